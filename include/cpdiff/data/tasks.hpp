#pragma once
// A LoRA task (one condition of the collection): Fashion-MNIST images under a style, with a label map.
// The classifier keeps its fixed 10-way head, so a task never adds outputs; it changes
//   (a) the inputs: a data::style (inverted, rotated, blurred... images; the shifted domains), and/or
//   (b) the targets: label_map[c] is the label an image of class c gets, in [0, 10), or -1 to drop the
//       class. A permutation relabels; dropping gives a class subset; mapping several classes to one
//       label groups them (the head then simply never needs the unused outputs).
// Accuracy is always measured on the 10-way head against the mapped labels.
//   data::task t = data::task::of_style(data::style::invert());
//   data::labelled_images train = data::make_split(data::load_fashion_mnist(dir, "train", 5000), t);
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cpdiff/core/error.hpp"
#include "cpdiff/data/fashion_mnist.hpp"
#include "cpdiff/data/image_styles.hpp"

namespace cpdiff::data {

// Images with integer class labels: one split of one task.
struct labelled_images {
  std::vector<float> images;         // [n, 784], values in [0, 1]
  std::vector<std::int64_t> labels;  // [n], in [0, 10)
  std::size_t size() const { return labels.size(); }
  bool empty() const { return labels.empty(); }
};

struct task {
  static constexpr std::size_t classes = 10;
  using label_map_type = std::array<int, classes>;
  static constexpr label_map_type identity_map{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};

  std::string name = "identity";
  data::style style;                     // identity by default
  label_map_type label_map = identity_map;

  // The task "images under s, labels unchanged", named after the style.
  static task of_style(const data::style& s) { return {s.name(), s, identity_map}; }
  // Clean images, labels mapped.
  static task relabelled(std::string name, label_map_type map) { return {std::move(name), {}, map}; }

  void validate() const {
    for (std::size_t c = 0; c < classes; ++c)
      CPDIFF_CHECK(label_map[c] >= -1 && label_map[c] < int(classes), config_error, "data::task", "task '", name,
                   "': label_map[", c, "] = ", label_map[c], " is not a label in [0, 10) or -1 (drop)");
  }
};

// The task's examples among the first images of `split`: styled images and mapped labels, classes mapped
// to -1 left out, at most max_count examples.
inline labelled_images make_split(const fashion_mnist_split& split, const task& t,
                                  std::size_t max_count = std::numeric_limits<std::size_t>::max()) {
  t.validate();
  constexpr std::size_t P = data::fashion_mnist_pixels;
  CPDIFF_CHECK(split.images.size() == split.count * P && split.labels.size() == split.count, shape_error,
               "data::make_split", "split holds ", split.images.size(), " pixels and ", split.labels.size(),
               " labels for ", split.count, " images");
  labelled_images out;
  std::vector<float> kept;
  for (std::size_t i = 0; i < split.count && out.labels.size() < max_count; ++i) {
    const int l = t.label_map[split.labels[i]];
    if (l < 0) continue;
    out.labels.push_back(l);
    kept.insert(kept.end(), split.images.begin() + static_cast<std::ptrdiff_t>(i * P),
                split.images.begin() + static_cast<std::ptrdiff_t>((i + 1) * P));
  }
  out.images = t.style.apply(kept);
  return out;
}

}  // namespace cpdiff::data
