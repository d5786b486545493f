#pragma once
// The evaluation report's machine-readable half (report.json) and the markdown tables of report.md.
//
// report.json: {"meta": {...}, "entries": [entry, ...]}, one entry per experiment and condition:
//   {"experiment": "glue", "condition": "RTE", "seen": true, "base_acc": 52.7,
//    "trained_best": 68.6, "trained_mean": 67.9, "generated_best": 66.1, "generated_mean": 65.0,
//    "generated_median": 65.2, "generated_std": 0.8, "n_trained": 10, "n_generated": 100, "control_mean": 30.1}
// control_mean (optional, null when not measured): the mean accuracy of a control run through the same
// de-normalisation and evaluation as the generated LoRAs (the example: N(0, 1) noise in place of the generated
// vectors), so a reader can see how much of the generated accuracy the diffusion model, not the pipeline, earns.
// Accuracies are in percent. A condition without trained checkpoints (or without a base model score)
// writes null in those fields rather than a made-up number.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpdiff/core/error.hpp"
#include "cpdiff/io/atomic_file.hpp"
#include "cpdiff/report/stats.hpp"

namespace cpdiff::report {

struct condition_result {
  std::string experiment;         // e.g. "glue_roberta_r1", "style_interpolation"
  std::string condition;          // e.g. "RTE", "l=0.150"
  bool seen = true;               // whether the diffusion model was trained on this condition
  std::optional<double> base_acc;  // the base model without LoRA, percent
  std::optional<summary> trained;  // over the trained checkpoints, percent
  summary generated;               // over the generated LoRAs, percent
  std::optional<double> control_mean;  // a control through the same de-normalisation (see above), percent
};

// A fraction in [0, 1] as percent.
inline double percent(double fraction) { return 100.0 * fraction; }

namespace detail {
inline nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
}  // namespace detail

inline nlohmann::json to_json(const condition_result& r) {
  CPDIFF_CHECK(!r.condition.empty(), config_error, "report::to_json", "condition name is empty (experiment '",
               r.experiment, "')");
  CPDIFF_CHECK(r.generated.count > 0, config_error, "report::to_json", "condition '", r.condition,
               "' has no generated accuracies");
  nlohmann::json j;
  j["experiment"] = r.experiment;
  j["condition"] = r.condition;
  j["seen"] = r.seen;
  j["base_acc"] = r.base_acc ? detail::number_or_null(*r.base_acc) : nlohmann::json(nullptr);
  j["trained_best"] = r.trained ? detail::number_or_null(r.trained->best) : nlohmann::json(nullptr);
  j["trained_mean"] = r.trained ? detail::number_or_null(r.trained->mean) : nlohmann::json(nullptr);
  j["generated_best"] = detail::number_or_null(r.generated.best);
  j["generated_mean"] = detail::number_or_null(r.generated.mean);
  j["generated_median"] = detail::number_or_null(r.generated.median);
  j["generated_std"] = detail::number_or_null(r.generated.stddev);
  j["n_trained"] = r.trained ? r.trained->count : std::size_t{0};
  j["n_generated"] = r.generated.count;
  j["control_mean"] = r.control_mean ? detail::number_or_null(*r.control_mean) : nlohmann::json(nullptr);
  return j;
}

// The whole report document; `meta` (an object, or null for none) holds run settings.
inline nlohmann::json report_json(const std::vector<condition_result>& results,
                                  const nlohmann::json& meta = nlohmann::json::object()) {
  CPDIFF_CHECK(meta.is_object() || meta.is_null(), config_error, "report::report_json",
               "meta must be a JSON object, got ", meta.type_name());
  nlohmann::json doc = nlohmann::json::object();
  if (!meta.is_null()) doc["meta"] = meta;
  doc["entries"] = nlohmann::json::array();
  for (const auto& r : results) doc["entries"].push_back(to_json(r));
  return doc;
}

// Write a JSON document (pretty, 2-space indent, trailing newline), atomically.
inline void write_json(const std::filesystem::path& path, const nlohmann::json& doc) {
  io::write_file_atomic(path, doc.dump(2) + "\n");
}

inline void write_report_json(const std::filesystem::path& path, const std::vector<condition_result>& results,
                              const nlohmann::json& meta = nlohmann::json::object()) {
  write_json(path, report_json(results, meta));
}

// A number with fixed decimals; "-" for a missing or non-finite value.
inline std::string format_number(std::optional<double> v, int decimals = 1) {
  if (!v || !std::isfinite(*v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, *v);
  return buf;
}

// A GitHub-flavoured markdown table. Every row must have as many cells as there are headers; '|' in a
// cell is escaped and newlines become spaces. Columns are padded so the source reads as a table too;
// `right_align[i]` (optional) right-aligns column i (numbers).
inline std::string markdown_table(const std::vector<std::string>& headers,
                                  const std::vector<std::vector<std::string>>& rows,
                                  const std::vector<bool>& right_align = {}) {
  const char* where = "report::markdown_table";
  CPDIFF_CHECK(!headers.empty(), shape_error, where, "no columns");
  CPDIFF_CHECK(right_align.empty() || right_align.size() == headers.size(), shape_error, where, "right_align has ",
               right_align.size(), " flags for ", headers.size(), " columns");
  auto clean = [](const std::string& s) {
    std::string out;
    for (char c : s) {
      if (c == '|')
        out += "\\|";
      else if (c == '\n' || c == '\r')
        out += ' ';
      else
        out += c;
    }
    return out;
  };
  std::vector<std::vector<std::string>> cells;
  cells.reserve(rows.size() + 1);
  cells.emplace_back();
  for (const auto& h : headers) cells.back().push_back(clean(h));
  for (std::size_t r = 0; r < rows.size(); ++r) {
    CPDIFF_CHECK(rows[r].size() == headers.size(), shape_error, where, "row ", r, " has ", rows[r].size(),
                 " cells for ", headers.size(), " columns");
    cells.emplace_back();
    for (const auto& c : rows[r]) cells.back().push_back(clean(c));
  }
  std::vector<std::size_t> width(headers.size(), 3);  // "---" at least
  for (const auto& row : cells)
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  const auto right = [&](std::size_t i) { return !right_align.empty() && right_align[i]; };
  auto line = [&](const std::vector<std::string>& row) {
    std::string s = "|";
    for (std::size_t i = 0; i < row.size(); ++i) {
      const std::string fill(width[i] - row[i].size(), ' ');
      s += ' ' + (right(i) ? fill + row[i] : row[i] + fill) + " |";
    }
    return s + "\n";
  };
  std::string out = line(cells[0]);
  out += "|";
  for (std::size_t i = 0; i < headers.size(); ++i)
    out += ' ' + (right(i) ? std::string(width[i] - 1, '-') + ":" : std::string(width[i], '-')) + " |";
  out += "\n";
  for (std::size_t r = 1; r < cells.size(); ++r) out += line(cells[r]);
  return out;
}

// The report's standard results table: one row per condition result.
inline std::string markdown_results_table(const std::vector<condition_result>& results, int decimals = 1) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : results) {
    const auto t = [&](double summary::*field) {
      return r.trained ? format_number((*r.trained).*field, decimals) : std::string("-");
    };
    rows.push_back({r.experiment, r.condition, r.seen ? "seen" : "unseen", format_number(r.base_acc, decimals),
                    t(&summary::best), t(&summary::mean), format_number(r.generated.best, decimals),
                    format_number(r.generated.mean, decimals), format_number(r.generated.median, decimals)});
  }
  return markdown_table({"experiment", "condition", "seen", "base", "trained best", "trained mean", "generated best",
                         "generated mean", "generated median"},
                        rows, {false, false, false, true, true, true, true, true, true});
}

}  // namespace cpdiff::report
