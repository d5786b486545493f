#pragma once
// JSON for the file readers: a parser that bounds the nesting depth (so no later walk or dump() of the
// value can run out of stack), rejects NUL bytes (nlohmann's lexer stops at one and ignores the rest) and
// can report keys repeated within one object (which nlohmann would silently collapse); and a short
// excerpt of a value for error messages.
//   io::json_parse_result r = io::parse_json(text, {.reject_duplicate_keys = true});
//   if (!r.ok()) fail("not valid JSON: ", r.error);
//   fail("'r' is ", io::json_excerpt(r.value["r"]), ", not a positive integer");
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace cpdiff::io {

inline constexpr std::size_t json_max_depth = 64;
inline constexpr std::size_t json_excerpt_chars = 80;

struct json_parse_options {
  std::size_t max_depth = json_max_depth;  // objects and arrays nested deeper are an error
  bool reject_duplicate_keys = false;
};

struct json_parse_result {
  nlohmann::json value;
  std::string error;                // "" when the text parsed within the limits
  std::string duplicate_key;        // the first key repeated within one object (with reject_duplicate_keys)
  std::size_t duplicate_depth = 0;  // the nesting level of that object: 1 for the outermost
  bool ok() const { return error.empty(); }
};

namespace detail {

// nlohmann SAX handler that builds the value, refusing deep nesting and (optionally) repeated keys.
class bounded_json_builder {
 public:
  using json = nlohmann::json;
  bounded_json_builder(json_parse_result& r, const json_parse_options& o) : r_(r), o_(o) {}

  bool null() { return place(json(nullptr)); }
  bool boolean(bool v) { return place(json(v)); }
  bool number_integer(json::number_integer_t v) { return place(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return place(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t&) { return place(json(v)); }
  bool string(json::string_t& v) { return place(json(std::move(v))); }
  bool binary(json::binary_t& v) { return place(json::binary(std::move(v))); }
  bool start_object(std::size_t) { return open(json::object()); }
  bool start_array(std::size_t) { return open(json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(json::string_t& k) {
    json& obj = *open_.back();
    if (o_.reject_duplicate_keys && obj.contains(k)) {
      r_.duplicate_key = k;
      r_.duplicate_depth = open_.size();
      r_.error = "duplicate key '" + k + "'";
      return false;
    }
    key_ = std::move(k);
    return true;
  }
  template <class Exception>
  bool parse_error(std::size_t, const std::string&, const Exception& ex) {
    r_.error = ex.what();  // quotes the last token, which may be long
    if (r_.error.size() > 2 * json_excerpt_chars) r_.error = r_.error.substr(0, 2 * json_excerpt_chars) + "...";
    return false;
  }

 private:
  // Stores v where the parser is (the root, the next array element or the value of the last key).
  json* put(json v) {
    if (open_.empty()) {
      r_.value = std::move(v);
      return &r_.value;
    }
    json& parent = *open_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    return &(parent[key_] = std::move(v));
  }
  bool place(json v) {
    put(std::move(v));
    return true;
  }
  bool open(json empty) {
    if (open_.size() >= o_.max_depth) {
      r_.error = "objects and arrays nested deeper than " + std::to_string(o_.max_depth) + " levels";
      return false;
    }
    open_.push_back(put(std::move(empty)));  // stays valid: its parent grows only after it closes
    return true;
  }
  bool close() {
    open_.pop_back();
    return true;
  }

  json_parse_result& r_;
  const json_parse_options& o_;
  std::vector<json*> open_;
  std::string key_;
};

// v's compact text appended to out while out is shorter than `limit`. Every level writes a bracket first,
// so the recursion is at most `limit` deep whatever the value's depth.
inline void append_excerpt(const nlohmann::json& v, std::string& out, std::size_t limit) {
  constexpr auto replace = nlohmann::json::error_handler_t::replace;
  if (out.size() >= limit) return;
  if (!v.is_structured()) {
    out += v.dump(-1, ' ', false, replace);
    return;
  }
  const bool obj = v.is_object();
  out += obj ? '{' : '[';
  for (auto it = v.begin(); it != v.end() && out.size() < limit; ++it) {
    if (it != v.begin()) out += ',';
    if (obj) out += nlohmann::json(it.key()).dump(-1, ' ', false, replace) + ':';
    append_excerpt(it.value(), out, limit);
  }
  out += obj ? '}' : ']';
}

}  // namespace detail

// Parses text as one JSON value within the limits of `o`. Never throws for bad input: r.error says why.
inline json_parse_result parse_json(std::string_view text, const json_parse_options& o = {}) {
  json_parse_result r;
  if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos) {
    r.error = "a NUL byte at offset " + std::to_string(nul);
    return r;
  }
  detail::bounded_json_builder b(r, o);
  const bool parsed = nlohmann::json::sax_parse(text.begin(), text.end(), &b);
  if (!parsed && r.error.empty()) r.error = "the JSON parser stopped";
  if (!r.ok()) r.value = nullptr;
  return r;
}

// At most `max_chars` characters of v's compact JSON text ("..." marks a cut), for error messages.
inline std::string json_excerpt(const nlohmann::json& v, std::size_t max_chars = json_excerpt_chars) {
  std::string out;
  detail::append_excerpt(v, out, max_chars);
  if (out.size() <= max_chars) return out;
  std::size_t cut = max_chars;
  while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 characters
  out.resize(cut);
  return out + "...";
}

}  // namespace cpdiff::io
