#pragma once
// A manifest: which LoRA checkpoints Cond P-Diff learns from, and the condition of each. JSON Lines, one
// adapter folder a line:
//   {"adapter": "runs/sst2/ckpt-12", "text": "sentiment of movie reviews"}
//   {"adapter": "runs/sst2/ckpt-13", "vector": "feat/sst2.npy"}        a float vector .npy [D] (e.g. CLIP)
//   {"adapter": "runs/rot90/ckpt-3", "images": ["rot90/0.png", "rot90/1.png"]}   style images (PNG)
// Relative paths resolve against the manifest's folder. Blank lines are skipped. Lines with the same text (or
// the same vector file, or the same list of images in the same order) are one condition; a manifest uses one
// kind of condition throughout.
//   auto entries = pipeline::read_manifest("runs/manifest.jsonl");
// Errors (io_error) name the file and the line: JSON that does not parse, a field missing, unknown or of the
// wrong type, more than one condition, an empty list of images, kinds mixed across lines.
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpdiff/core/error.hpp"
#include "cpdiff/io/atomic_file.hpp"
#include "cpdiff/io/json_read.hpp"

namespace cpdiff::pipeline {

enum class condition_kind { text, vector, images };
inline const char* to_string(condition_kind k) {
  return k == condition_kind::text ? "text" : k == condition_kind::vector ? "vector" : "images";
}
// "text", "vector" or "images" -> the kind; false for another name.
inline bool condition_kind_from_name(const std::string& name, condition_kind& k) {
  for (condition_kind c : {condition_kind::text, condition_kind::vector, condition_kind::images})
    if (name == to_string(c)) {
      k = c;
      return true;
    }
  return false;
}

struct manifest_entry {
  std::filesystem::path adapter;  // the PEFT folder, resolved against the manifest's folder
  condition_kind kind = condition_kind::text;
  std::string text;               // kind text: the description
  std::filesystem::path vector;   // kind vector: the .npy file, resolved
  std::vector<std::filesystem::path> images;  // kind images: the PNG files, resolved, in order
  std::size_t line = 0;           // 1-based line in the manifest

  // What identifies the entry's condition: the text, the vector file's path, or the image paths in order.
  std::string condition_key() const {
    if (kind == condition_kind::text) return text;
    if (kind == condition_kind::vector) return vector.string();
    std::string key;
    for (const auto& p : images) key += (key.empty() ? "" : " ") + p.string();
    return key;
  }
};

namespace detail {
template <class... Args>
[[noreturn]] void manifest_fail(const std::filesystem::path& file, std::size_t line, Args&&... args) {
  throw_error<io_error>("pipeline::read_manifest", "'", file.string(), "' line ", line, ": ",
                        std::forward<Args>(args)...);
}

inline std::string field_string(const nlohmann::json& j, const char* key, const std::filesystem::path& file,
                                std::size_t line) {
  const auto& v = j.at(key);
  if (!v.is_string() || v.get<std::string>().empty())
    manifest_fail(file, line, "'", key, "' must be a non-empty string (", v.type_name(), " given)");
  return v.get<std::string>();
}

inline manifest_entry parse_manifest_line(const std::string& text, const std::filesystem::path& file,
                                          std::size_t line) {
  io::json_parse_result parsed = io::parse_json(text);
  if (!parsed.ok()) manifest_fail(file, line, "not valid JSON (", parsed.error, ")");
  const nlohmann::json j = std::move(parsed.value);
  if (!j.is_object()) manifest_fail(file, line, "expected a JSON object {\"adapter\": ..., \"text\": ...}");
  for (const auto& [key, value] : j.items())
    if (key != "adapter" && key != "text" && key != "vector" && key != "images")
      manifest_fail(file, line, "unknown field '", key, "' (expected \"adapter\" and one of \"text\", \"vector\", \"images\")");
  if (!j.contains("adapter")) manifest_fail(file, line, "no \"adapter\" (the PEFT folder of this checkpoint)");
  const int conditions = int(j.contains("text")) + int(j.contains("vector")) + int(j.contains("images"));
  if (conditions != 1)
    manifest_fail(file, line, conditions > 1 ? "more than one of \"text\", \"vector\" and \"images\": give one condition"
                                             : "no condition: give \"text\", \"vector\" or \"images\"");
  const auto base = file.parent_path();
  manifest_entry e;
  e.line = line;
  e.adapter = base / field_string(j, "adapter", file, line);
  if (j.contains("text")) {
    e.kind = condition_kind::text;
    e.text = field_string(j, "text", file, line);
  } else if (j.contains("vector")) {
    e.kind = condition_kind::vector;
    e.vector = base / field_string(j, "vector", file, line);
  } else {
    e.kind = condition_kind::images;
    const auto& list = j.at("images");
    if (!list.is_array() || list.empty())
      manifest_fail(file, line, "'images' must be a non-empty list of PNG paths (", list.type_name(), " given)");
    for (const auto& p : list) {
      if (!p.is_string() || p.get<std::string>().empty())
        manifest_fail(file, line, "'images' must list non-empty strings (", p.type_name(), " given)");
      e.images.push_back(base / p.get<std::string>());
    }
  }
  return e;
}
}  // namespace detail

inline std::vector<manifest_entry> read_manifest(const std::filesystem::path& file) {
  const std::string text = io::read_file_text(file);
  std::vector<manifest_entry> out;
  std::size_t line = 0, begin = 0;
  while (begin < text.size()) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    ++line;
    const std::string row = text.substr(begin, end - begin);
    begin = end + 1;
    if (row.find_first_not_of(" \t\r") == std::string::npos) continue;
    out.push_back(detail::parse_manifest_line(row, file, line));
    if (out.back().kind != out.front().kind)
      detail::manifest_fail(file, line, "a \"", to_string(out.back().kind), "\" condition, but line ",
                            out.front().line, " has a \"", to_string(out.front().kind),
                            "\" one: a manifest uses one kind of condition");
  }
  CPDIFF_CHECK(!out.empty(), io_error, "pipeline::read_manifest", "'", file.string(),
               "' lists no adapters (expected JSON Lines: {\"adapter\": \"DIR\", \"text\": \"...\"} per line)");
  return out;
}

}  // namespace cpdiff::pipeline
