// A small JSON value and parser: enough for signature files, no dependency.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace edgert {

class Json {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0.0;
  std::string string;
  std::vector<Json> array;
  std::map<std::string, Json> object;

  static Json parse(const std::string& text, const std::string& where);  // throws edgert::Error

  bool is_null() const { return kind == Kind::Null; }
  bool has(const std::string& key) const { return kind == Kind::Object && object.count(key); }
  // Typed accessors: throw edgert::Error naming `key` when the value is missing or of another type.
  const Json& at(const std::string& key) const;
  const std::string& str() const;
  double num() const;
  const std::vector<Json>& list() const;
};

// A JSON string literal, quoted and escaped.
std::string json_quote(const std::string& s);

}  // namespace edgert
