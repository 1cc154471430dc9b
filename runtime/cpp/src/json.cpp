#include "edgert/json.hpp"

#include <cstdlib>
#include <cstdio>

#include "edgert/error.hpp"

namespace edgert {
namespace {

constexpr int kMaxDepth = 64;  // signature files nest a few levels; refuse pathological input

class Parser {
 public:
  Parser(const std::string& text, const std::string& where) : s_(text), where_(where) {}

  Json document() {
    Json v = value(0);
    skip_space();
    if (i_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  const std::string& s_;
  const std::string& where_;
  size_t i_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    size_t line = 1;
    for (size_t k = 0; k < i_ && k < s_.size(); ++k) line += s_[k] == '\n';
    throw Error(where_ + ": not valid JSON (line " + std::to_string(line) + "): " + what);
  }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r'))
      ++i_;
  }
  bool take(const char* word) {
    size_t n = std::char_traits<char>::length(word);
    if (s_.compare(i_, n, word) != 0) return false;
    i_ += n;
    return true;
  }
  void expect(char c) {
    skip_space();
    if (i_ >= s_.size() || s_[i_] != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }

  Json value(int depth) {
    if (depth > kMaxDepth) fail("nested too deeply");
    skip_space();
    if (i_ >= s_.size()) fail("unexpected end of file");
    Json v;
    char c = s_[i_];
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') {
      v.kind = Json::Kind::String;
      v.string = string();
    } else if (take("true")) {
      v.kind = Json::Kind::Bool;
      v.boolean = true;
    } else if (take("false")) {
      v.kind = Json::Kind::Bool;
    } else if (take("null")) {
      v.kind = Json::Kind::Null;
    } else {
      v.kind = Json::Kind::Number;
      v.number = number();
    }
    return v;
  }

  Json object(int depth) {
    Json v;
    v.kind = Json::Kind::Object;
    ++i_;  // '{'
    skip_space();
    if (i_ < s_.size() && s_[i_] == '}') return ++i_, v;
    for (;;) {
      skip_space();
      if (i_ >= s_.size() || s_[i_] != '"') fail("expected a string key");
      std::string key = string();
      expect(':');
      v.object[key] = value(depth + 1);
      skip_space();
      if (i_ < s_.size() && s_[i_] == ',') { ++i_; continue; }
      expect('}');
      return v;
    }
  }

  Json array(int depth) {
    Json v;
    v.kind = Json::Kind::Array;
    ++i_;  // '['
    skip_space();
    if (i_ < s_.size() && s_[i_] == ']') return ++i_, v;
    for (;;) {
      v.array.push_back(value(depth + 1));
      skip_space();
      if (i_ < s_.size() && s_[i_] == ',') { ++i_; continue; }
      expect(']');
      return v;
    }
  }

  double number() {
    const char* start = s_.c_str() + i_;
    char* end = nullptr;
    double d = std::strtod(start, &end);
    if (end == start) fail("expected a value");
    i_ += static_cast<size_t>(end - start);
    return d;
  }

  std::string string() {
    ++i_;  // opening quote
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_++];
      if (c != '\\') { out += c; continue; }
      if (i_ >= s_.size()) break;
      char e = s_[i_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u': out += utf8(code_unit()); break;
        default: out += e;  // \" \\ \/
      }
    }
    if (i_ >= s_.size()) fail("unterminated string");
    ++i_;  // closing quote
    return out;
  }

  unsigned code_unit() {
    if (i_ + 4 > s_.size()) fail("short \\u escape");
    unsigned u = static_cast<unsigned>(std::strtoul(s_.substr(i_, 4).c_str(), nullptr, 16));
    i_ += 4;
    if (u >= 0xD800 && u < 0xDC00 && s_.compare(i_, 2, "\\u") == 0) {  // surrogate pair
      i_ += 2;
      unsigned low = code_unit();
      u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00);
    }
    return u;
  }

  static std::string utf8(unsigned u) {
    std::string out;
    if (u < 0x80) {
      out += static_cast<char>(u);
    } else if (u < 0x800) {
      out += static_cast<char>(0xC0 | (u >> 6));
      out += static_cast<char>(0x80 | (u & 0x3F));
    } else if (u < 0x10000) {
      out += static_cast<char>(0xE0 | (u >> 12));
      out += static_cast<char>(0x80 | ((u >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (u & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (u >> 18));
      out += static_cast<char>(0x80 | ((u >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((u >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (u & 0x3F));
    }
    return out;
  }
};

}  // namespace

Json Json::parse(const std::string& text, const std::string& where) {
  return Parser(text, where).document();
}

const Json& Json::at(const std::string& key) const {
  auto it = object.find(key);
  if (kind != Kind::Object || it == object.end()) throw Error("missing key '" + key + "'");
  return it->second;
}

const std::string& Json::str() const {
  if (kind != Kind::String) throw Error("expected a string");
  return string;
}

double Json::num() const {
  if (kind != Kind::Number) throw Error("expected a number");
  return number;
}

const std::vector<Json>& Json::list() const {
  if (kind != Kind::Array) throw Error("expected a list");
  return array;
}

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace edgert
