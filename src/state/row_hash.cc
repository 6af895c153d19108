#include "state/row_hash.h"

#include <ostream>

namespace driftless::state {

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case too: it would not come back as the same text
}

constexpr char kDigits[] = "0123456789abcdef";

}  // namespace

RowHash::RowHash(const RowHash& o)
    : raw_(o.raw_),
      text_(o.text_ ? std::make_unique<std::string>(*o.text_) : nullptr),
      hex_(o.hex_) {}

RowHash& RowHash::operator=(const RowHash& o) {
  if (this != &o) {
    raw_ = o.raw_;
    text_ = o.text_ ? std::make_unique<std::string>(*o.text_) : nullptr;
    hex_ = o.hex_;
  }
  return *this;
}

void RowHash::assign(std::string_view text) {
  if (text.size() == 2 * raw_.size()) {
    bool hex = true;
    for (size_t i = 0; i < raw_.size() && hex; ++i) {
      int hi = HexDigit(text[2 * i]);
      int lo = HexDigit(text[2 * i + 1]);
      hex = hi >= 0 && lo >= 0;
      if (hex) raw_[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    if (hex) {
      hex_ = true;
      text_.reset();
      return;
    }
  }
  hex_ = false;
  raw_ = {};
  if (text.empty()) {
    text_.reset();
  } else {
    text_ = std::make_unique<std::string>(text);
  }
}

std::string RowHash::str() const {
  if (!hex_) return text_ ? *text_ : std::string();
  std::string out(2 * raw_.size(), '0');
  for (size_t i = 0; i < raw_.size(); ++i) {
    out[2 * i] = kDigits[raw_[i] >> 4];
    out[2 * i + 1] = kDigits[raw_[i] & 0xf];
  }
  return out;
}

bool operator==(const RowHash& a, std::string_view b) {
  if (!a.hex_) return (a.text_ ? std::string_view(*a.text_) : std::string_view()) == b;
  if (b.size() != 2 * a.raw_.size()) return false;
  for (size_t i = 0; i < a.raw_.size(); ++i) {
    if (b[2 * i] != kDigits[a.raw_[i] >> 4] || b[2 * i + 1] != kDigits[a.raw_[i] & 0xf]) {
      return false;
    }
  }
  return true;
}

std::ostream& operator<<(std::ostream& os, const RowHash& h) { return os << h.str(); }

}  // namespace driftless::state
