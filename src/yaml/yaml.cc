#include "yaml/yaml.h"

#include <yaml.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace driftless::yaml {
namespace {

using value::Value;

/// A document may hold at most this many nodes once aliases are expanded (billion laughs).
constexpr size_t kMaxNodes = 1'000'000;
/// Containers may nest at most this deep (values are copied and destroyed recursively).
constexpr size_t kMaxDepth = 1'000;

constexpr std::string_view kCoreTagPrefix = "tag:yaml.org,2002:";

/// A 1-based position.
struct Mark {
  uint32_t line = 0;
  uint32_t column = 0;
};

uint32_t Clamp32(size_t n) {
  return n >= std::numeric_limits<uint32_t>::max() ? std::numeric_limits<uint32_t>::max()
                                                   : static_cast<uint32_t>(n);
}

Mark ToMark(const yaml_mark_t& m) { return {Clamp32(m.line + 1), Clamp32(m.column + 1)}; }

std::string MarkText(Mark m) {
  return "line " + std::to_string(m.line) + ", column " + std::to_string(m.column);
}

std::string_view EventText(const yaml_event_t& e) {
  return {reinterpret_cast<const char*>(e.data.scalar.value), e.data.scalar.length};
}

std::string_view CString(const yaml_char_t* s) {
  return s == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(s));
}

// ---- Scalar resolution (YAML 1.2 core schema) ---------------------------------------------

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsNull(std::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

/// Sets *out for true/false in the three core spellings.
bool ParseBool(std::string_view s, bool* out) {
  if (s == "true" || s == "True" || s == "TRUE") {
    *out = true;
    return true;
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    *out = false;
    return true;
  }
  return false;
}

/// What a plain scalar resolved to when it looked like an integer.
enum class IntResult { kNotInt, kInt, kTooBigDecimal, kTooBigRadix };

/// Accumulates digits of `base` into a uint64; false when a digit is invalid or it overflows
/// (*overflow tells which).
bool AccumulateDigits(std::string_view digits, unsigned base, uint64_t* out, bool* overflow) {
  uint64_t v = 0;
  *overflow = false;
  for (char c : digits) {
    int d = HexDigit(c);
    if (d < 0 || static_cast<unsigned>(d) >= base) return false;
    if (v > (std::numeric_limits<uint64_t>::max() - static_cast<unsigned>(d)) / base) {
      *overflow = true;
      // Keep scanning: an invalid digit later still means "not an integer".
      for (char rest : digits) {
        int r = HexDigit(rest);
        if (r < 0 || static_cast<unsigned>(r) >= base) {
          *overflow = false;
          return false;
        }
      }
      return false;
    }
    v = v * base + static_cast<unsigned>(d);
  }
  *out = v;
  return true;
}

/// Core schema integers: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+.
IntResult ParseInt(std::string_view s, int64_t* out) {
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    uint64_t v = 0;
    bool overflow = false;
    if (!AccumulateDigits(s.substr(2), s[1] == 'x' ? 16 : 8, &v, &overflow)) {
      return overflow ? IntResult::kTooBigRadix : IntResult::kNotInt;
    }
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return IntResult::kTooBigRadix;
    }
    *out = static_cast<int64_t>(v);
    return IntResult::kInt;
  }
  bool negative = false;
  std::string_view digits = s;
  if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
    negative = digits[0] == '-';
    digits.remove_prefix(1);
  }
  if (digits.empty()) return IntResult::kNotInt;
  for (char c : digits) {
    if (!IsDigit(c)) return IntResult::kNotInt;
  }
  uint64_t v = 0;
  bool overflow = false;
  if (!AccumulateDigits(digits, 10, &v, &overflow)) return IntResult::kTooBigDecimal;
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (negative) {
    if (v > kMax + 1) return IntResult::kTooBigDecimal;
    *out = v == kMax + 1 ? std::numeric_limits<int64_t>::min() : -static_cast<int64_t>(v);
  } else {
    if (v > kMax) return IntResult::kTooBigDecimal;
    *out = static_cast<int64_t>(v);
  }
  return IntResult::kInt;
}

/// Matches [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?.
bool LooksLikeFloat(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  if (i < n && (s[i] == '-' || s[i] == '+')) ++i;
  size_t int_digits = 0;
  while (i < n && IsDigit(s[i])) ++i, ++int_digits;
  size_t frac_digits = 0;
  if (i < n && s[i] == '.') {
    ++i;
    while (i < n && IsDigit(s[i])) ++i, ++frac_digits;
  }
  if (int_digits == 0 && frac_digits == 0) return false;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '-' || s[i] == '+')) ++i;
    size_t exp_digits = 0;
    while (i < n && IsDigit(s[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == n;
}

/// The value of a float literal (already matched by LooksLikeFloat) that from_chars reported
/// out of range: infinity when its magnitude is huge, zero when it is tiny.
double OutOfRangeFloat(std::string_view s) {
  bool negative = s[0] == '-';
  if (s[0] == '-' || s[0] == '+') s.remove_prefix(1);
  int64_t significant_int_digits = 0;
  int64_t zeros_after_point = 0;
  bool seen_nonzero = false;
  size_t i = 0;
  for (; i < s.size() && IsDigit(s[i]); ++i) {
    if (s[i] != '0') seen_nonzero = true;
    if (seen_nonzero) ++significant_int_digits;
  }
  if (i < s.size() && s[i] == '.') {
    for (++i; i < s.size() && IsDigit(s[i]); ++i) {
      if (!seen_nonzero && s[i] == '0')
        ++zeros_after_point;
      else
        seen_nonzero = true;
    }
  }
  int64_t exponent = 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool exp_negative = false;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) exp_negative = s[i++] == '-';
    for (; i < s.size(); ++i) {
      if (exponent < 1'000'000'000) exponent = exponent * 10 + (s[i] - '0');
    }
    if (exp_negative) exponent = -exponent;
  }
  // The value is about 10^(position - 1).
  int64_t position =
      significant_int_digits > 0 ? significant_int_digits + exponent : exponent - zeros_after_point;
  double magnitude = position > 0 ? std::numeric_limits<double>::infinity() : 0.0;
  return negative ? -magnitude : magnitude;
}

/// Parses a float literal matched by LooksLikeFloat.
double ParseFloat(std::string_view s) {
  std::string_view body = s;
  if (!body.empty() && body[0] == '+') body.remove_prefix(1);
  double d = 0;
  auto [ptr, ec] = std::from_chars(body.data(), body.data() + body.size(), d);
  if (ec == std::errc::result_out_of_range) return OutOfRangeFloat(s);
  if (ec != std::errc() || ptr != body.data() + body.size()) return OutOfRangeFloat(s);
  return d;
}

/// .inf, -.inf, +.inf and .nan in the core spellings.
bool ParseSpecialFloat(std::string_view s, double* out) {
  std::string_view body = s;
  bool negative = false;
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body == ".inf" || body == ".Inf" || body == ".INF") {
    *out = negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
    return true;
  }
  if (body.size() == s.size() && (s == ".nan" || s == ".NaN" || s == ".NAN")) {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  return false;
}

/// Resolves a plain, untagged scalar. Only hex or octal integers that do not fit in an int64
/// fail: then *ok is false and the result is null.
Value ResolvePlain(std::string_view s, bool* ok) {
  *ok = true;
  if (s.empty()) return Value::Null();
  // Fast path: only these first characters can start a scalar that is not a string.
  const char c = s[0];
  if (!IsDigit(c) && c != '~' && c != 'n' && c != 'N' && c != 't' && c != 'T' && c != 'f' &&
      c != 'F' && c != '-' && c != '+' && c != '.') {
    return Value::String(std::string(s));
  }
  if (IsNull(s)) return Value::Null();
  bool b = false;
  if (ParseBool(s, &b)) return Value::Bool(b);
  int64_t i = 0;
  switch (ParseInt(s, &i)) {
    case IntResult::kInt:
      return Value::Int(i);
    case IntResult::kTooBigDecimal:
      return Value::Double(ParseFloat(s));
    case IntResult::kTooBigRadix:
      *ok = false;
      return Value::Null();
    case IntResult::kNotInt:
      break;
  }
  double d = 0;
  if (ParseSpecialFloat(s, &d)) return Value::Double(d);
  if (LooksLikeFloat(s)) return Value::Double(ParseFloat(s));
  return Value::String(std::string(s));
}

// ---- Tags ------------------------------------------------------------------------------------

/// What a node's tag asks for.
enum class TagKind { kNone, kStr, kNull, kBool, kInt, kFloat, kSeq, kMap, kUnsupported };

TagKind ClassifyTag(std::string_view tag) {
  if (tag.empty()) return TagKind::kNone;
  if (tag == "!") return TagKind::kStr;  // the non-specific tag: "not resolved", i.e. a string
  if (tag.substr(0, kCoreTagPrefix.size()) != kCoreTagPrefix) return TagKind::kUnsupported;
  std::string_view name = tag.substr(kCoreTagPrefix.size());
  if (name == "str") return TagKind::kStr;
  if (name == "null") return TagKind::kNull;
  if (name == "bool") return TagKind::kBool;
  if (name == "int") return TagKind::kInt;
  if (name == "float") return TagKind::kFloat;
  if (name == "seq") return TagKind::kSeq;
  if (name == "map") return TagKind::kMap;
  return TagKind::kUnsupported;
}

/// "!!str" rather than "tag:yaml.org,2002:str" in messages.
std::string ShortTag(std::string_view tag) {
  if (tag.substr(0, kCoreTagPrefix.size()) == kCoreTagPrefix) {
    return "!!" + std::string(tag.substr(kCoreTagPrefix.size()));
  }
  return std::string(tag);
}

/// The value of a scalar; on failure *error says why (and the value is null).
Value ScalarValue(std::string_view text, bool plain, std::string_view tag, std::string* error) {
  const TagKind kind = ClassifyTag(tag);
  if (kind == TagKind::kNone) {
    if (!plain) return Value::String(std::string(text));
  } else if (kind == TagKind::kStr) {
    return Value::String(std::string(text));
  } else if (kind == TagKind::kUnsupported) {
    *error = "unsupported tag " + ShortTag(tag);
    return Value();
  } else if (kind == TagKind::kSeq || kind == TagKind::kMap) {
    *error = "tag " + ShortTag(tag) + " cannot be used on a scalar";
    return Value();
  }
  bool ok = true;
  Value v = ResolvePlain(text, &ok);
  if (!ok) {
    *error = "integer " + std::string(text) + " does not fit in 64 bits";
    return Value();
  }
  if (kind == TagKind::kNone) return v;
  // An explicit core tag: the text must resolve to that type.
  const bool matches =
      (kind == TagKind::kNull && v.is_null()) || (kind == TagKind::kBool && v.is_bool()) ||
      (kind == TagKind::kInt && v.is_int()) || (kind == TagKind::kFloat && v.is_number());
  if (!matches) {
    *error = "\"" + std::string(text) + "\" is not a valid " + ShortTag(tag);
    return Value();
  }
  if (kind == TagKind::kFloat && v.is_int()) return Value::Double(v.as_double());
  return v;
}

// ---- Builder -------------------------------------------------------------------------------

/// A container being filled; its children wait on the builder's scratch stacks.
struct Frame {
  bool is_map = false;
  bool have_key = false;  // a map whose last member (on members_) still lacks its value
  Mark mark;              // where the container starts
  size_t base = 0;        // first child on items_ or members_
  size_t nodes_at_start = 0;
  size_t height = 1;   // containers nested here: 1 + the tallest child's (scalars are 0)
  std::string anchor;  // anchor name of this container, if any
};

/// An anchored node kept for aliases to copy.
struct Anchor {
  Value value;
  std::string key_text;  // the scalar's text, for aliases used as mapping keys
  bool is_scalar = false;
  size_t nodes = 1;   // nodes in the subtree, aliases expanded
  size_t height = 0;  // containers nested in it
};

class Builder {
 public:
  Builder(std::string_view text, const std::string& file, Diagnostics& diags)
      : text_(text), file_(file), diags_(diags) {}

  std::vector<YamlDocument> Run();

 private:
  /// Handles one event; false stops parsing (an error was reported).
  bool OnEvent(const yaml_event_t& e);
  bool OnScalar(const yaml_event_t& e);
  bool OnAlias(const yaml_event_t& e);
  bool OnStart(const yaml_event_t& e, bool is_map);
  bool OnEnd();
  /// Starts a member of the open mapping `f`; its value comes with the next Attach.
  void AddKey(Frame& f, std::string key, Mark at);
  /// Adds a finished node to the open container (or makes it the document root).
  void Attach(Value&& v, size_t height);
  /// Counts nodes against the budget; false (error reported) when it is exceeded.
  bool Spend(size_t nodes, Mark at);
  /// Keeps a copy of an anchored node for aliases.
  void Remember(std::string_view name, Value v, std::string key_text, bool is_scalar, size_t nodes,
                size_t height);
  /// Makes the object of a finished mapping frame from its members; false (error reported)
  /// when a key repeats.
  bool BuildObject(const Frame& f, Value* out);
  void ReportParserError(const yaml_parser_t& parser);
  void Error(Mark at, std::string message);

  std::string_view text_;
  const std::string& file_;
  Diagnostics& diags_;

  std::vector<YamlDocument> docs_;
  // The document being built.
  Value root_;
  bool have_root_ = false;
  bool root_is_empty_ = false;  // the root is the empty plain scalar of a document with no content
  uint32_t doc_line_ = 0;
  size_t nodes_ = 0;
  std::vector<Frame> frames_;
  size_t open_ = 0;  // frames_[0, open_) are open; the rest are kept for their buffers
  std::vector<Value> items_;
  std::vector<Value::Member> members_;
  std::vector<Mark> key_marks_;  // beside members_: where each key starts
  std::vector<uint32_t> order_;  // scratch for sorting members
  std::unordered_map<std::string, Anchor> anchors_;
};

void Builder::Error(Mark at, std::string message) {
  diags_.Error(SourcePos{file_, at.line, at.column}, std::move(message));
}

bool Builder::Spend(size_t nodes, Mark at) {
  nodes_ += nodes;
  if (nodes_ > kMaxNodes) {
    Error(at, "document has more than " + std::to_string(kMaxNodes) +
                  " nodes once aliases are expanded");
    return false;
  }
  return true;
}

void Builder::Remember(std::string_view name, Value v, std::string key_text, bool is_scalar,
                       size_t nodes, size_t height) {
  Anchor& a = anchors_[std::string(name)];
  a.value = std::move(v);
  a.key_text = std::move(key_text);
  a.is_scalar = is_scalar;
  a.nodes = nodes;
  a.height = height;
}

void Builder::AddKey(Frame& f, std::string key, Mark at) {
  members_.emplace_back(std::move(key), Value());
  key_marks_.push_back(at);
  f.have_key = true;
}

void Builder::Attach(Value&& v, size_t height) {
  if (open_ == 0) {
    root_ = std::move(v);
    have_root_ = true;
    return;
  }
  Frame& f = frames_[open_ - 1];
  f.height = std::max(f.height, height + 1);
  if (!f.is_map) {
    items_.push_back(std::move(v));
    return;
  }
  // The member was pushed with its key; any members of the value itself are gone by now.
  members_.back().second = std::move(v);
  f.have_key = false;
}

bool Builder::OnScalar(const yaml_event_t& e) {
  const Mark mark = ToMark(e.start_mark);
  if (!Spend(1, mark)) return false;
  const std::string_view text = EventText(e);
  const std::string_view tag = CString(e.data.scalar.tag);
  const std::string_view anchor = CString(e.data.scalar.anchor);
  const bool plain = e.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
  std::string error;

  // A mapping key: its text is the key, whatever it looks like.
  if (open_ > 0 && frames_[open_ - 1].is_map && !frames_[open_ - 1].have_key) {
    Frame& f = frames_[open_ - 1];
    AddKey(f, std::string(text), mark);
    if (!tag.empty() || !anchor.empty()) {
      // Check the tag, and resolve the value an alias of this key would copy.
      Value v = ScalarValue(text, plain, tag, &error);
      if (!error.empty()) {
        Error(mark, std::move(error));
        return false;
      }
      v.set_mark(mark.line, mark.column);
      if (!anchor.empty()) Remember(anchor, std::move(v), members_.back().first, true, 1, 0);
    }
    return true;
  }

  Value v = ScalarValue(text, plain, tag, &error);
  if (!error.empty()) {
    Error(mark, std::move(error));
    return false;
  }
  // A quoted scalar is marked at its text, past the opening quote, so that a position inside
  // the string (an expression at offset N) is the mark's column + N.
  const bool quoted = e.data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                      e.data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
  v.set_mark(mark.line, mark.column + (quoted && tag.empty() && anchor.empty() ? 1 : 0));
  if (open_ == 0 && plain && text.empty() && tag.empty() && anchor.empty()) {
    root_is_empty_ = true;
  }
  if (!anchor.empty()) Remember(anchor, v, std::string(text), true, 1, 0);
  Attach(std::move(v), 0);
  return true;
}

bool Builder::OnAlias(const yaml_event_t& e) {
  const Mark mark = ToMark(e.start_mark);
  const std::string_view name = CString(e.data.alias.anchor);
  auto it = anchors_.find(std::string(name));
  if (it == anchors_.end()) {
    Error(mark, "unknown anchor \"" + std::string(name) + "\"");
    return false;
  }
  const Anchor& a = it->second;
  if (!Spend(a.nodes, mark)) return false;
  if (open_ > 0 && frames_[open_ - 1].is_map && !frames_[open_ - 1].have_key) {
    if (!a.is_scalar) {
      Error(mark, "mapping keys must be scalars; alias *" + std::string(name) + " is a " +
                      std::string(value::TypeName(a.value.type())));
      return false;
    }
    Frame& f = frames_[open_ - 1];
    AddKey(f, a.key_text, mark);
    return true;
  }
  if (open_ + a.height > kMaxDepth) {
    Error(mark, "alias *" + std::string(name) + " nests values deeper than " +
                    std::to_string(kMaxDepth) + " levels");
    return false;
  }
  Value v = a.value;
  v.set_mark(mark.line, mark.column);
  Attach(std::move(v), a.height);
  return true;
}

bool Builder::OnStart(const yaml_event_t& e, bool is_map) {
  const Mark mark = ToMark(e.start_mark);
  if (open_ > 0 && frames_[open_ - 1].is_map && !frames_[open_ - 1].have_key) {
    Error(mark,
          std::string("mapping keys must be scalars, not a ") + (is_map ? "mapping" : "sequence"));
    return false;
  }
  if (open_ >= kMaxDepth) {
    Error(mark, "values nest deeper than " + std::to_string(kMaxDepth) + " levels");
    return false;
  }
  if (!Spend(1, mark)) return false;
  const yaml_char_t* raw_tag = is_map ? e.data.mapping_start.tag : e.data.sequence_start.tag;
  const std::string_view tag = CString(raw_tag);
  const TagKind kind = ClassifyTag(tag);
  if (kind != TagKind::kNone && !(kind == TagKind::kStr && tag == "!") &&
      kind != (is_map ? TagKind::kMap : TagKind::kSeq)) {
    Error(mark, kind == TagKind::kUnsupported ? "unsupported tag " + ShortTag(tag)
                                              : "tag " + ShortTag(tag) + " cannot be used on a " +
                                                    (is_map ? "mapping" : "sequence"));
    return false;
  }
  if (open_ == frames_.size()) frames_.emplace_back();
  Frame& f = frames_[open_++];
  f.is_map = is_map;
  f.have_key = false;
  f.mark = mark;
  f.base = is_map ? members_.size() : items_.size();
  f.nodes_at_start = nodes_ - 1;
  f.height = 1;
  f.anchor.assign(CString(is_map ? e.data.mapping_start.anchor : e.data.sequence_start.anchor));
  return true;
}

bool Builder::OnEnd() {
  if (open_ == 0) return true;  // libyaml never sends an unmatched end; be safe anyway
  Frame& f = frames_[open_ - 1];
  if (f.is_map && f.have_key) {
    // libyaml always sends a value after a key; be safe anyway.
    Value null_value;
    null_value.set_mark(key_marks_.back().line, key_marks_.back().column);
    Attach(std::move(null_value), 0);
  }
  Value v;
  if (f.is_map) {
    if (!BuildObject(f, &v)) return false;
  } else {
    const auto first = items_.begin() + static_cast<ptrdiff_t>(f.base);
    v = Value::MakeList(
        Value::List(std::make_move_iterator(first), std::make_move_iterator(items_.end())));
    items_.erase(first, items_.end());
  }
  v.set_mark(f.mark.line, f.mark.column);
  const size_t height = f.height;
  --open_;
  if (!f.anchor.empty()) {
    const size_t nodes = nodes_ - f.nodes_at_start;
    // Keeping a copy for later aliases costs as much as the subtree: count it too, so nested
    // anchors cannot make the copying quadratic.
    if (!Spend(nodes, f.mark)) return false;
    Remember(f.anchor, v, "", false, nodes, height);
  }
  Attach(std::move(v), height);
  return true;
}

/// An object from members already in key order (MakeObject would sort them again).
Value SortedObject(Value::Object members) {
  Value v = Value::MakeObject();
  v.as_object() = std::move(members);
  return v;
}

bool Builder::BuildObject(const Frame& f, Value* out) {
  const auto first = members_.begin() + static_cast<ptrdiff_t>(f.base);
  const size_t n = members_.size() - f.base;
  bool sorted = true;
  for (size_t i = 1; i < n && sorted; ++i) sorted = first[i - 1].first < first[i].first;
  if (sorted) {
    // Common for small mappings, and strictly ascending keys cannot repeat.
    *out = SortedObject(
        Value::Object(std::make_move_iterator(first), std::make_move_iterator(members_.end())));
  } else {
    // Sort indices rather than members (cheap to move, and the document order survives for
    // the duplicate-key message); equal keys stay in document order.
    order_.resize(n);
    for (size_t i = 0; i < n; ++i) order_[i] = static_cast<uint32_t>(i);
    std::sort(order_.begin(), order_.end(), [&first](uint32_t a, uint32_t b) {
      const int c = first[a].first.compare(first[b].first);
      return c < 0 || (c == 0 && a < b);
    });
    // Of all repeated keys, report the one repeated first in the document.
    size_t repeat = n;
    size_t original = n;
    for (size_t i = 1; i < n; ++i) {
      if (first[order_[i - 1]].first == first[order_[i]].first && order_[i] < repeat) {
        repeat = order_[i];
        original = order_[i - 1];
      }
    }
    if (repeat != n) {
      const Mark first_mark = key_marks_[f.base + original];
      Error(key_marks_[f.base + repeat], "duplicate key \"" + first[repeat].first +
                                             "\" (first defined at " + MarkText(first_mark) + ")");
      return false;
    }
    Value::Object members;
    members.reserve(n);
    for (uint32_t i : order_) members.push_back(std::move(first[i]));
    *out = SortedObject(std::move(members));
  }
  members_.erase(first, members_.end());
  key_marks_.resize(f.base);
  return true;
}

void Builder::ReportParserError(const yaml_parser_t& parser) {
  Mark at;
  std::string message;
  switch (parser.error) {
    case YAML_MEMORY_ERROR:
      message = "out of memory while parsing YAML";
      break;
    case YAML_READER_ERROR: {
      // Reader errors carry a byte offset instead of a mark.
      size_t offset = std::min(parser.problem_offset, text_.size());
      std::string_view before = text_.substr(0, offset);
      at.line = Clamp32(static_cast<size_t>(std::count(before.begin(), before.end(), '\n')) + 1);
      size_t line_start = before.rfind('\n');
      at.column = Clamp32(offset - (line_start == std::string_view::npos ? 0 : line_start + 1) + 1);
      message = parser.problem != nullptr ? parser.problem : "cannot read input";
      if (parser.problem_value != -1) {
        char hex[16];
        std::snprintf(hex, sizeof(hex), " (#%X)", static_cast<unsigned>(parser.problem_value));
        message += hex;
      }
      break;
    }
    default:
      at = ToMark(parser.problem_mark);
      message = parser.problem != nullptr ? parser.problem : "invalid YAML";
      if (parser.context != nullptr) {
        message += std::string(" (") + parser.context + " at " +
                   MarkText(ToMark(parser.context_mark)) + ")";
      }
      break;
  }
  Error(at, std::move(message));
}

bool Builder::OnEvent(const yaml_event_t& e) {
  switch (e.type) {
    case YAML_DOCUMENT_START_EVENT:
      have_root_ = false;
      root_is_empty_ = false;
      root_ = Value();
      nodes_ = 0;
      open_ = 0;
      items_.clear();
      members_.clear();
      key_marks_.clear();
      anchors_.clear();
      doc_line_ = ToMark(e.start_mark).line;
      return true;
    case YAML_DOCUMENT_END_EVENT:
      if (have_root_ && !root_is_empty_) docs_.push_back({std::move(root_), doc_line_});
      have_root_ = false;
      return true;
    case YAML_SCALAR_EVENT:
      return OnScalar(e);
    case YAML_ALIAS_EVENT:
      return OnAlias(e);
    case YAML_SEQUENCE_START_EVENT:
      return OnStart(e, false);
    case YAML_MAPPING_START_EVENT:
      return OnStart(e, true);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
      return OnEnd();
    default:
      return true;
  }
}

std::vector<YamlDocument> Builder::Run() {
  yaml_parser_t parser;
  if (yaml_parser_initialize(&parser) == 0) {
    Error({}, "out of memory while parsing YAML");
    return {};
  }
  yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text_.data()),
                               text_.size());
  // Enough for a typical resource document without regrowing.
  frames_.reserve(8);
  items_.reserve(16);
  members_.reserve(16);
  key_marks_.reserve(16);
  while (true) {
    yaml_event_t event;
    if (yaml_parser_parse(&parser, &event) == 0) {
      ReportParserError(parser);
      break;
    }
    const bool keep_going = OnEvent(event) && event.type != YAML_STREAM_END_EVENT;
    yaml_event_delete(&event);
    if (!keep_going) break;
  }
  yaml_parser_delete(&parser);
  return std::move(docs_);
}

}  // namespace

std::vector<YamlDocument> ParseYaml(std::string_view text, const std::string& file,
                                    Diagnostics& diags) {
  Builder builder(text, file, diags);
  return builder.Run();
}

}  // namespace driftless::yaml
