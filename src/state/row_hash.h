#pragma once

#include <array>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>

namespace driftless::state {

/// A spec hash or live digest as a digest row (ResourceDigest) holds it. The engine writes
/// these as 32 lowercase hex digits; such a value is kept as its 16 bytes, in the row itself (a
/// std::string needs a 33-byte heap block beside its 32 bytes), and a plan holds one digest row
/// per resource in state. Any other text (a marker such as "imported" or "incomplete", or what
/// another writer stored) is kept as it is: str() always gives back the text it was made from.
class RowHash {
 public:
  RowHash() = default;
  // Implicit, as the string it replaces.
  RowHash(std::string_view text) { assign(text); }    // NOLINT
  RowHash(const std::string& text) { assign(text); }  // NOLINT
  RowHash(const char* text) { assign(text); }         // NOLINT
  RowHash(const RowHash& o);
  RowHash(RowHash&&) noexcept = default;
  RowHash& operator=(const RowHash& o);
  RowHash& operator=(RowHash&&) noexcept = default;
  ~RowHash() = default;

  void assign(std::string_view text);
  /// The text it was made from.
  std::string str() const;
  bool empty() const { return !hex_ && (text_ == nullptr || text_->empty()); }

  /// Compares with text without making a string.
  friend bool operator==(const RowHash& a, std::string_view b);

 private:
  std::array<uint8_t, 16> raw_{};
  std::unique_ptr<std::string> text_;  // only for text that is not 32 lowercase hex digits
  bool hex_ = false;
};

std::ostream& operator<<(std::ostream& os, const RowHash& h);

}  // namespace driftless::state
