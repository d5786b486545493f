#pragma once
// Fashion-MNIST reader: the IDX files of Debian's dataset-fashion-mnist, gzip-compressed.
//
// IDX format (big-endian): images start with magic 0x00000803, count, rows, cols (16 bytes), then
// count * rows * cols unsigned bytes; labels start with magic 0x00000801, count (8 bytes), then
// count unsigned bytes. The files are read completely: a missing file, a non-gzip or corrupt gzip
// stream (including a CRC mismatch), a wrong magic, a short body, bytes after the body and (for
// labels) an out-of-range class each throw cpdiff::io_error naming the file and the problem.
//
// Needs zlib: link ZLIB::ZLIB.
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "cpdiff/core/error.hpp"
#include "cpdiff/core/shape.hpp"

namespace cpdiff::data {

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

inline constexpr std::uint32_t idx_images_magic = 0x00000803u;  // unsigned byte, 3 dimensions
inline constexpr std::uint32_t idx_labels_magic = 0x00000801u;  // unsigned byte, 1 dimension

inline constexpr std::size_t fashion_mnist_rows = 28;
inline constexpr std::size_t fashion_mnist_cols = 28;
inline constexpr std::size_t fashion_mnist_pixels = fashion_mnist_rows * fashion_mnist_cols;  // 784
inline constexpr std::size_t fashion_mnist_num_classes = 10;
inline constexpr std::size_t fashion_mnist_train_count = 60000;
inline constexpr std::size_t fashion_mnist_t10k_count = 10000;

// Where Debian's dataset-fashion-mnist package installs the files.
inline constexpr const char* default_fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";

inline constexpr std::array<std::string_view, fashion_mnist_num_classes> fashion_mnist_class_names = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// Name of class `label` (0..9); config_error for an out-of-range label.
inline std::string_view fashion_mnist_class_name(std::size_t label) {
  CPDIFF_CHECK(label < fashion_mnist_num_classes, config_error, "fashion_mnist_class_name",
               "label ", label, " is out of range [0, ", fashion_mnist_num_classes - 1, "]");
  return fashion_mnist_class_names[label];
}

// "Read everything" for max_count arguments.
inline constexpr std::size_t all_items = std::numeric_limits<std::size_t>::max();

// ---------------------------------------------------------------------------------------------
// Result types
// ---------------------------------------------------------------------------------------------

struct idx_images {
  std::size_t count = 0;
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<std::uint8_t> pixels;  // [count, rows, cols], row-major

  std::size_t image_size() const { return rows * cols; }
};

struct idx_labels {
  std::vector<std::uint8_t> labels;

  std::size_t count() const { return labels.size(); }
};

struct fashion_mnist_split {
  std::vector<float> images;          // [count, 784], row-major, pixel / 255 in [0, 1]
  std::vector<std::uint8_t> labels;   // [count], 0..9
  std::size_t count = 0;
  static constexpr std::size_t rows = fashion_mnist_rows;
  static constexpr std::size_t cols = fashion_mnist_cols;
  static constexpr std::size_t pixels_per_image = fashion_mnist_pixels;
};

// ---------------------------------------------------------------------------------------------
// gzip input stream (detail)
// ---------------------------------------------------------------------------------------------

namespace detail {

// Reads the decompressed bytes of a gzip file, chunk by chunk. Concatenated gzip members are
// read as one stream (as gunzip does); anything after a member that is not another gzip member
// is a corrupt stream. Errors are io_errors thrown under the name `where`.
class gz_input {
 public:
  gz_input(const std::filesystem::path& path, const char* where) : path_(path.string()), where_(where) {
    std::error_code ec;
    const auto st = std::filesystem::status(path, ec);
    if (!std::filesystem::exists(st))
      throw_error<io_error>(where_, "'", path_, "': file not found");
    if (std::filesystem::is_directory(st))
      throw_error<io_error>(where_, "'", path_, "': is a directory, expected a .gz file");
    if (!std::filesystem::is_regular_file(st))  // a FIFO would block the open
      throw_error<io_error>(where_, "'", path_, "': is not a regular file, expected a .gz file");
    file_.reset(std::fopen(path_.c_str(), "rb"));
    if (!file_) {
      const int e = errno;
      throw_error<io_error>(where_, "'", path_, "': cannot open: ", std::strerror(e));
    }
    in_.resize(chunk_size);
    // Check the gzip magic ourselves for a clearer message than zlib's "incorrect header check".
    refill();
    if (zs_.avail_in < 2 || in_[0] != 0x1f || in_[1] != 0x8b) {
      std::string first = zs_.avail_in == 0 ? std::string("the file is empty")
                                            : concat_hex_prefix(zs_.avail_in);
      throw_error<io_error>(where_, "'", path_, "': not a gzip file (", first,
                            "); expected gzip-compressed IDX data");
    }
    // 16 + MAX_WBITS: gzip wrapper only.
    if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK)
      throw_error<io_error>(where_, "'", path_, "': zlib inflateInit2 failed");
    inflating_ = true;
  }

  gz_input(const gz_input&) = delete;
  gz_input& operator=(const gz_input&) = delete;

  ~gz_input() {
    if (inflating_) inflateEnd(&zs_);
  }

  // Decompresses up to n bytes into dst; returns fewer only at the end of the data.
  std::size_t read(std::uint8_t* dst, std::size_t n) {
    std::size_t done = 0;
    while (done < n && !finished_) {
      if (zs_.avail_in == 0) refill();
      if (member_ended_) {
        if (zs_.avail_in == 0) {  // clean end of the last member
          finished_ = true;
          break;
        }
        // More input after a complete member: it must be another gzip member.
        if (inflateReset(&zs_) != Z_OK)
          throw_error<io_error>(where_, "'", path_, "': zlib inflateReset failed");
        member_ended_ = false;
      }
      if (zs_.avail_in == 0 && eof_)
        throw_error<io_error>(where_, "'", path_,
                              "': corrupt gzip stream: compressed data ends early (truncated .gz file), "
                              "after ", total_out_ + done, " decompressed bytes");
      const std::size_t want =
          std::min<std::size_t>(n - done, std::numeric_limits<uInt>::max());
      zs_.next_out = dst + done;
      zs_.avail_out = static_cast<uInt>(want);
      const int ret = inflate(&zs_, Z_NO_FLUSH);
      done += want - zs_.avail_out;
      if (ret == Z_STREAM_END) {
        member_ended_ = true;
      } else if (ret == Z_BUF_ERROR) {
        // No progress possible: only legitimate when the input is exhausted, handled above.
        if (zs_.avail_in != 0)
          throw_error<io_error>(where_, "'", path_, "': corrupt gzip stream (no progress)");
      } else if (ret != Z_OK) {
        const char* msg = zs_.msg ? zs_.msg : zError(ret);
        throw_error<io_error>(where_, "'", path_, "': corrupt gzip stream (", msg, ") after ",
                              total_out_ + done, " decompressed bytes");
      }
    }
    total_out_ += done;
    return done;
  }

  // Reads n bytes into a fresh vector, growing it as data arrives (a bogus header cannot force a
  // huge allocation). The vector is shorter than n when the data ends first.
  std::vector<std::uint8_t> read_vector(std::size_t n) {
    std::vector<std::uint8_t> out;
    constexpr std::size_t step = std::size_t{1} << 22;
    while (out.size() < n) {
      const std::size_t have = out.size();
      const std::size_t want = std::min(step, n - have);
      out.resize(have + want);
      const std::size_t got = read(out.data() + have, want);
      if (got < want) {
        out.resize(have + got);
        break;
      }
    }
    return out;
  }

  // Decompresses the rest of the stream (verifying its CRC) and returns how many bytes it had.
  std::size_t count_remaining() {
    std::array<std::uint8_t, 1 << 16> scratch;
    std::size_t extra = 0;
    for (;;) {
      const std::size_t got = read(scratch.data(), scratch.size());
      extra += got;
      if (got < scratch.size()) break;
    }
    return extra;
  }

  const std::string& path() const { return path_; }

 private:
  static constexpr std::size_t chunk_size = std::size_t{1} << 16;

  void refill() {
    if (eof_ || !file_) return;
    const std::size_t got = std::fread(in_.data(), 1, in_.size(), file_.get());
    if (got < in_.size()) {
      if (std::ferror(file_.get())) {
        const int e = errno;
        throw_error<io_error>(where_, "'", path_, "': read error: ", std::strerror(e));
      }
      eof_ = true;
    }
    zs_.next_in = in_.data();
    zs_.avail_in = static_cast<uInt>(got);
  }

  std::string concat_hex_prefix(std::size_t avail) const {
    static const char* digits = "0123456789abcdef";
    std::string s = "first bytes";
    for (std::size_t i = 0; i < std::min<std::size_t>(avail, 4); ++i) {
      s += " 0x";
      s += digits[in_[i] >> 4];
      s += digits[in_[i] & 0xf];
    }
    return s;
  }

  std::string path_;
  const char* where_;
  struct file_closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, file_closer> file_;  // closed on every path, constructor throws included
  std::vector<std::uint8_t> in_;
  z_stream zs_{};
  bool inflating_ = false;
  bool eof_ = false;           // the file has no more compressed bytes
  bool member_ended_ = false;  // inflate reported the end of a gzip member
  bool finished_ = false;      // all members decoded and no input left
  std::size_t total_out_ = 0;
};

inline std::uint32_t load_be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

inline std::string hex32(std::uint32_t v) {
  static const char* digits = "0123456789abcdef";
  std::string s = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) s += digits[(v >> shift) & 0xf];
  return s;
}

// Reads the magic number, checks it, then the rest of the fixed-size header (`size` bytes in all);
// throws when the stream ends inside the header. The magic is checked first so that a short file
// of the wrong kind is reported as such.
inline std::array<std::uint8_t, 16> read_idx_header(gz_input& in, std::size_t size, std::uint32_t magic,
                                                    const char* what, const char* where) {
  std::array<std::uint8_t, 16> h{};
  std::size_t got = in.read(h.data(), 4);
  if (got == 4) {
    const std::uint32_t m = load_be32(h.data());
    if (m != magic)
      throw_error<io_error>(where, "'", in.path(), "': wrong IDX magic ", hex32(m), ", expected ",
                            hex32(magic), " (", what, ")");
    got += in.read(h.data() + 4, size - 4);
  }
  if (got < size)
    throw_error<io_error>(where, "'", in.path(), "': truncated IDX header: expected ", size,
                          " header bytes, file has ", got);
  return h;
}

// After the body: no further decompressed bytes may follow.
inline void check_no_trailing(gz_input& in, std::size_t expected, const char* unit, const char* where) {
  const std::size_t extra = in.count_remaining();
  if (extra != 0)
    throw_error<io_error>(where, "'", in.path(), "': expected ", expected, " ", unit,
                          ", file has ", expected + extra, " (", extra,
                          " trailing bytes after the IDX data)");
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// IDX readers
// ---------------------------------------------------------------------------------------------

// What a caller expects of an IDX image file: checked on the header, before any pixel is inflated.
struct idx_image_limits {
  std::size_t rows = 0, cols = 0;     // 0: any size
  std::size_t max_count = all_items;  // most images accepted
};

// Reads a gzip-compressed IDX image file (magic 0x00000803). rows and cols must be non-zero.
inline idx_images read_idx_images(const std::filesystem::path& path, const idx_image_limits& limits = {}) {
  constexpr const char* where = "read_idx_images";
  detail::gz_input in(path, where);
  const auto h =
      detail::read_idx_header(in, 16, idx_images_magic, "IDX unsigned-byte 3-D image file", where);
  idx_images out;
  out.count = detail::load_be32(h.data() + 4);
  out.rows = detail::load_be32(h.data() + 8);
  out.cols = detail::load_be32(h.data() + 12);
  if (out.rows == 0 || out.cols == 0)
    throw_error<io_error>(where, "'", in.path(), "': invalid image size ", out.rows, "x", out.cols,
                          " in the IDX header");
  if ((limits.rows != 0 && out.rows != limits.rows) || (limits.cols != 0 && out.cols != limits.cols))
    throw_error<io_error>(where, "'", in.path(), "': expected ", limits.rows, "x", limits.cols,
                          " images, file has ", out.rows, "x", out.cols);
  if (out.count > limits.max_count)
    throw_error<io_error>(where, "'", in.path(), "': the IDX header claims ", out.count, " images, more than the ",
                          limits.max_count, " expected");
  const std::array<std::size_t, 3> dims = {out.count, out.rows, out.cols};
  std::size_t expected = 0;
  if (!checked_product(dims.begin(), dims.end(), expected))
    throw_error<io_error>(where, "'", in.path(), "': IDX header size ", out.count, "x", out.rows, "x",
                          out.cols, " overflows");
  out.pixels = in.read_vector(expected);
  if (out.pixels.size() < expected)
    throw_error<io_error>(where, "'", in.path(), "': expected ", expected, " pixel bytes (", out.count,
                          " images of ", out.rows, "x", out.cols, "), file has ", out.pixels.size());
  detail::check_no_trailing(in, expected, "pixel bytes", where);
  return out;
}

// Reads a gzip-compressed IDX label file (magic 0x00000801). Every label must be below
// num_classes (10 for Fashion-MNIST); num_classes = 0 skips that check.
// At most max_count labels are accepted (checked on the header).
inline idx_labels read_idx_labels(const std::filesystem::path& path,
                                  std::size_t num_classes = fashion_mnist_num_classes,
                                  std::size_t max_count = all_items) {
  constexpr const char* where = "read_idx_labels";
  detail::gz_input in(path, where);
  const auto h =
      detail::read_idx_header(in, 8, idx_labels_magic, "IDX unsigned-byte 1-D label file", where);
  const std::size_t count = detail::load_be32(h.data() + 4);
  if (count > max_count)
    throw_error<io_error>(where, "'", in.path(), "': the IDX header claims ", count, " labels, more than the ",
                          max_count, " expected");
  idx_labels out;
  out.labels = in.read_vector(count);
  if (out.labels.size() < count)
    throw_error<io_error>(where, "'", in.path(), "': expected ", count, " label bytes, file has ",
                          out.labels.size());
  detail::check_no_trailing(in, count, "label bytes", where);
  if (num_classes != 0) {
    for (std::size_t i = 0; i < count; ++i) {
      if (out.labels[i] >= num_classes)
        throw_error<io_error>(where, "'", in.path(), "': label ", int{out.labels[i]}, " at index ", i,
                              " is out of range [0, ", num_classes - 1, "]");
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Fashion-MNIST
// ---------------------------------------------------------------------------------------------

// The two files of a split ("train" or "t10k") in dir.
inline std::filesystem::path fashion_mnist_images_path(const std::filesystem::path& dir,
                                                       std::string_view split) {
  return dir / (std::string(split) + "-images-idx3-ubyte.gz");
}
inline std::filesystem::path fashion_mnist_labels_path(const std::filesystem::path& dir,
                                                       std::string_view split) {
  return dir / (std::string(split) + "-labels-idx1-ubyte.gz");
}

// Loads split "train" (60000 images) or "t10k" (10000) from dir, keeping the first max_count
// images (all by default). Both files are read and validated completely. Images must be 28x28, at
// most 60000 of them, and the image and label counts must agree.
inline fashion_mnist_split load_fashion_mnist(const std::filesystem::path& dir, std::string_view split,
                                              std::size_t max_count = all_items) {
  constexpr const char* where = "load_fashion_mnist";
  if (split != "train" && split != "t10k")
    throw_error<config_error>(where, "unknown split '", split, "', expected \"train\" or \"t10k\"");
  const auto images_path = fashion_mnist_images_path(dir, split);
  const auto labels_path = fashion_mnist_labels_path(dir, split);
  for (const auto& p : {images_path, labels_path}) {
    std::error_code ec;
    if (!std::filesystem::exists(p, ec))
      throw_error<io_error>(where, "Fashion-MNIST file '", p.string(),
                            "' not found; install the dataset with `apt-get install "
                            "dataset-fashion-mnist` (files go to ",
                            default_fashion_mnist_dir, ") or pass the directory that holds ",
                            images_path.filename().string(), " and ", labels_path.filename().string());
  }
  // The header is checked before the body is inflated: 28x28, at most the train split's count.
  idx_images img =
      read_idx_images(images_path, {fashion_mnist_rows, fashion_mnist_cols, fashion_mnist_train_count});
  idx_labels lab = read_idx_labels(labels_path, fashion_mnist_num_classes, fashion_mnist_train_count);
  if (img.count != lab.count())
    throw_error<io_error>(where, "split '", split, "': '", images_path.string(), "' has ", img.count,
                         " images but '", labels_path.string(), "' has ", lab.count(), " labels");
  fashion_mnist_split out;
  out.count = std::min(img.count, max_count);
  const std::size_t n_pixels = out.count * fashion_mnist_pixels;
  out.images.resize(n_pixels);
  constexpr float scale = 1.0f / 255.0f;
  for (std::size_t i = 0; i < n_pixels; ++i) out.images[i] = static_cast<float>(img.pixels[i]) * scale;
  lab.labels.resize(out.count);
  out.labels = std::move(lab.labels);
  return out;
}

// Same, from the default directory (/usr/share/datasets/fashion-mnist).
inline fashion_mnist_split load_fashion_mnist(std::string_view split, std::size_t max_count = all_items) {
  return load_fashion_mnist(std::filesystem::path(default_fashion_mnist_dir), split, max_count);
}

}  // namespace cpdiff::data
