// A small strict JSON parser producing Values. Our own, so that state and plan files load
// without a second in-memory representation.
#include <cmath>
#include <cstdlib>
#include <string>

#include "value/value.h"

namespace driftless::value {
namespace {

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Result<Value> Parse() {
    Value v;
    if (!ParseValue(v, 0)) return MakeError(error_);
    SkipSpace();
    if (pos_ != s_.size()) return Fail("unexpected trailing characters"), MakeError(error_);
    return v;
  }

 private:
  static constexpr int kMaxDepth = 512;

  bool Fail(const std::string& what) {
    if (error_.empty()) error_ = "JSON: " + what + " at offset " + std::to_string(pos_);
    return false;
  }

  void SkipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r'))
      ++pos_;
  }

  bool Literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return Fail("invalid literal");
    pos_ += word.size();
    return true;
  }

  bool ParseValue(Value& out, int depth) {
    if (depth > kMaxDepth) return Fail("nesting too deep");
    SkipSpace();
    if (pos_ >= s_.size()) return Fail("unexpected end");
    char c = s_[pos_];
    switch (c) {
      case 'n':
        out = Value::Null();
        return Literal("null");
      case 't':
        out = Value::Bool(true);
        return Literal("true");
      case 'f':
        out = Value::Bool(false);
        return Literal("false");
      case '"': {
        std::string str;
        if (!ParseString(str)) return false;
        out = Value::String(std::move(str));
        return true;
      }
      case '[': {
        ++pos_;
        Value::List items;
        SkipSpace();
        if (pos_ < s_.size() && s_[pos_] == ']') {
          ++pos_;
          out = Value::MakeList();
          return true;
        }
        while (true) {
          Value item;
          if (!ParseValue(item, depth + 1)) return false;
          items.push_back(std::move(item));
          SkipSpace();
          if (pos_ < s_.size() && s_[pos_] == ',') {
            ++pos_;
            continue;
          }
          if (pos_ < s_.size() && s_[pos_] == ']') {
            ++pos_;
            break;
          }
          return Fail("expected , or ]");
        }
        out = Value::MakeList(std::move(items));
        return true;
      }
      case '{': {
        ++pos_;
        Value::Object members;
        SkipSpace();
        if (pos_ < s_.size() && s_[pos_] == '}') {
          ++pos_;
          out = Value::MakeObject();
          return true;
        }
        while (true) {
          SkipSpace();
          std::string key;
          if (pos_ >= s_.size() || s_[pos_] != '"') return Fail("expected a key");
          if (!ParseString(key)) return false;
          SkipSpace();
          if (pos_ >= s_.size() || s_[pos_] != ':') return Fail("expected :");
          ++pos_;
          Value item;
          if (!ParseValue(item, depth + 1)) return false;
          members.emplace_back(std::move(key), std::move(item));
          SkipSpace();
          if (pos_ < s_.size() && s_[pos_] == ',') {
            ++pos_;
            continue;
          }
          if (pos_ < s_.size() && s_[pos_] == '}') {
            ++pos_;
            break;
          }
          return Fail("expected , or }");
        }
        if (members.size() == 1 && members[0].first == "$unknown") {
          out = Value::Unknown();
          return true;
        }
        out = Value::MakeObject(std::move(members));
        return true;
      }
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return ParseNumber(out);
        return Fail("unexpected character");
    }
  }

  bool ParseNumber(Value& out) {
    size_t start = pos_;
    bool is_double = false;
    if (s_[pos_] == '-') ++pos_;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c >= '0' && c <= '9') {
        ++pos_;
      } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
        is_double = true;
        ++pos_;
      } else {
        break;
      }
    }
    std::string num(s_.substr(start, pos_ - start));
    char* end = nullptr;
    if (!is_double) {
      errno = 0;
      long long i = std::strtoll(num.c_str(), &end, 10);
      if (errno == 0 && end && *end == '\0') {
        out = Value::Int(i);
        return true;
      }
    }
    double d = std::strtod(num.c_str(), &end);
    if (end == nullptr || *end != '\0') return Fail("invalid number");
    if (std::isinf(d)) return Fail("number out of range");  // JSON has no infinity
    out = Value::Double(d);
    return true;
  }

  static void AppendUtf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  bool Hex4(unsigned& cp) {
    if (pos_ + 4 > s_.size()) return Fail("short \\u escape");
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      cp <<= 4;
      if (c >= '0' && c <= '9')
        cp |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        cp |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        cp |= static_cast<unsigned>(c - 'A' + 10);
      else
        return Fail("bad \\u escape");
    }
    return true;
  }

  bool ParseString(std::string& out) {
    ++pos_;  // opening quote
    while (true) {
      size_t run = pos_;
      while (pos_ < s_.size() && s_[pos_] != '"' && s_[pos_] != '\\') ++pos_;
      out.append(s_.substr(run, pos_ - run));
      if (pos_ >= s_.size()) return Fail("unterminated string");
      if (s_[pos_] == '"') {
        ++pos_;
        return true;
      }
      ++pos_;  // backslash
      if (pos_ >= s_.size()) return Fail("unterminated escape");
      char e = s_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          unsigned cp = 0;
          if (!Hex4(cp)) return false;
          if (cp >= 0xDC00 && cp < 0xE000) return Fail("unpaired low surrogate");
          if (cp >= 0xD800 && cp < 0xDC00) {
            // A high surrogate must be followed by a low one: together they are one code point.
            if (pos_ + 6 > s_.size() || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') {
              return Fail("unpaired high surrogate");
            }
            pos_ += 2;
            unsigned lo = 0;
            if (!Hex4(lo)) return false;
            if (lo < 0xDC00 || lo >= 0xE000) return Fail("unpaired high surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          return Fail("bad escape");
      }
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace

Result<Value> ParseJson(std::string_view text) { return Parser(text).Parse(); }

}  // namespace driftless::value
