#pragma once
// peft_dataset: stage 2 of Cond P-Diff (SPEC.md) over LoRAs trained elsewhere: the PEFT folders a manifest lists
// (pipeline/manifest.hpp), read, checked to share one layout, flattened into a data::lora_collection with one
// condition per distinct text or vector file, each with its feature row:
//   text    pipeline::text_condition(text_dim).encode(text)   [text_dim]
//   vector  the .npy file's float vector                      [D] (or [1, D])
//   images  the k PNG images' grey values, one after another  [k H W] (io/png_read.hpp; every condition
//           gives k images of one size H x W: image_shape [k, H, W], which the generator's encoder takes)
//   auto ds = pipeline::load_peft_dataset("runs/manifest.jsonl", {.text_dim = 32, .log = &std::cout});
// Errors name the manifest line and the folder or file: a folder that does not read (lora::load_peft's errors),
// a layout differing from the first line's (the module or field), a vector of another width, an image that does
// not read, or images of another count or size than the first condition's.
#include <cstddef>
#include <filesystem>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "cpdiff/core/error.hpp"
#include "cpdiff/data/lora_collection.hpp"
#include "cpdiff/io/npy.hpp"
#include "cpdiff/io/peft.hpp"
#include "cpdiff/io/peft_inspect.hpp"
#include "cpdiff/io/png_read.hpp"
#include "cpdiff/pipeline/manifest.hpp"
#include "cpdiff/pipeline/text_condition.hpp"

namespace cpdiff::pipeline {

struct peft_dataset_options {
  std::size_t text_dim = 32;  // the width of text features
  std::ostream* log = nullptr;  // progress lines while reading (nullptr: silent)
};

struct peft_dataset {
  data::lora_collection collection;
  condition_kind kind = condition_kind::text;
  io::st_dtype dtype = io::st_dtype::F32;  // the adapters' weight dtype (F32 when they differ)
  std::string base_model;                  // base_model_name_or_path of the first adapter ("" when null)
  std::size_t adapters = 0;                // folders read
  shape image_shape;                       // kind images: [k, H, W] of every condition's images (else empty)
};

namespace detail {
template <class... Args>
[[noreturn]] void dataset_fail(const manifest_entry& e, const std::filesystem::path& manifest, Args&&... args) {
  throw_error<io_error>("pipeline::load_peft_dataset", "'", manifest.string(), "' line ", e.line, ": ",
                        std::forward<Args>(args)...);
}

// The entry's k images, read as grey [H, W] each and laid end to end: [k H W]. They must share one size;
// `images` is set to [k, H, W].
inline std::vector<float> images_feature(const manifest_entry& e, const std::filesystem::path& manifest, shape& images) {
  std::vector<float> row;
  std::size_t h = 0, w = 0;
  for (const auto& file : e.images) {
    if (!std::filesystem::exists(file)) dataset_fail(e, manifest, "image '", file.string(), "' not found");
    io::grey_image im;
    try {
      im = io::read_png_grey(file);
    } catch (const error& err) {
      dataset_fail(e, manifest, err.what());
    }
    if (row.empty()) h = im.height, w = im.width;
    if (im.height != h || im.width != w)
      dataset_fail(e, manifest, "image '", file.string(), "' is ", im.height, " x ", im.width, " pixels, '",
                   e.images.front().string(), "' is ", h, " x ", w, ": a condition's images share one size");
    row.insert(row.end(), im.pixels.begin(), im.pixels.end());
  }
  images = shape{e.images.size(), h, w};
  return row;
}

inline std::vector<float> condition_feature(const manifest_entry& e, const std::filesystem::path& manifest,
                                            const text_condition& text) {
  if (e.kind == condition_kind::text) {
    try {
      return text.encode(e.text);
    } catch (const error& err) {
      dataset_fail(e, manifest, "text '", e.text, "': ", err.what());
    }
  }
  if (!std::filesystem::exists(e.vector)) dataset_fail(e, manifest, "condition vector '", e.vector.string(), "' not found");
  const auto a = io::load_npy<float>(e.vector);
  const bool row = a.shape.size() == 1 || (a.shape.size() == 2 && a.shape[0] == 1);
  if (!row || a.data.empty())
    dataset_fail(e, manifest, "condition vector '", e.vector.string(), "' has shape ",
                 shape::from_range(a.shape.begin(), a.shape.end()), ", expected a vector [D] or [1, D]");
  return a.data;
}
}  // namespace detail

inline peft_dataset load_peft_dataset(const std::filesystem::path& manifest, const peft_dataset_options& o = {}) {
  const std::vector<manifest_entry> entries = read_manifest(manifest);
  const text_condition text(o.text_dim);
  std::vector<lora::peft_summary> summaries;
  std::set<std::string> dtypes;
  for (const auto& e : entries) {
    try {
      summaries.push_back(lora::inspect_peft(e.adapter));
    } catch (const error& err) {
      detail::dataset_fail(e, manifest, err.what());
    }
    if (const std::string why = lora::peft_layout_difference(summaries.front(), summaries.back()); !why.empty())
      detail::dataset_fail(e, manifest, "its adapter does not share the layout of line ", entries.front().line,
                           ": ", why);
    dtypes.insert(summaries.back().dtypes());
  }
  const lora::adapter first = lora::load_peft(entries.front().adapter);
  peft_dataset ds{data::lora_collection(data::lora_layout(first)), entries.front().kind, io::st_dtype::F32,
                  summaries.front().config.base_model_name_or_path, 0, shape{}};
  if (dtypes.size() == 1) io::st_dtype_from_name(*dtypes.begin(), ds.dtype);  // "F16, F32" (mixed) stays F32
  std::map<std::string, std::size_t> condition_of;  // condition key -> id
  for (const auto& e : entries) {
    auto [it, fresh] = condition_of.try_emplace(e.condition_key(), ds.collection.condition_count());
    if (fresh) {
      shape s;
      std::vector<float> feature = e.kind == condition_kind::images ? detail::images_feature(e, manifest, s)
                                                                    : detail::condition_feature(e, manifest, text);
      if (e.kind == condition_kind::images) {
        if (ds.image_shape.rank() == 0) ds.image_shape = s;
        if (s != ds.image_shape)
          detail::dataset_fail(e, manifest, "its condition has images ", s, " ([count, height, width]), line ",
                               entries.front().line, "'s has ", ds.image_shape, ": every condition gives as many "
                               "images of one size");
      }
      if (ds.collection.condition_count() > 0 && feature.size() != ds.collection.feature_dim())
        detail::dataset_fail(e, manifest, "condition vector '", e.vector.string(), "' has ", feature.size(),
                             " values, line ", entries.front().line, "'s has ", ds.collection.feature_dim());
      ds.collection.add_condition(e.condition_key(), std::move(feature));
    }
    ds.collection.append(it->second, lora::load_peft(e.adapter));
    ++ds.adapters;
    if (o.log && (ds.adapters % 100 == 0 || ds.adapters == entries.size()))
      *o.log << "read " << ds.adapters << "/" << entries.size() << " adapters\n";
  }
  return ds;
}

}  // namespace cpdiff::pipeline
