// libFuzzer harness for the gzip-compressed IDX readers of data/fashion_mnist.hpp, which only take paths:
// the files are written to a per-process scratch folder.
//
// Input: one flags byte, then the payload.
//   flags & 3:  0  read_idx_images(file)                          (no limits)
//               1  read_idx_images(file, {28, 28, 60000})         (Fashion-MNIST's limits, checked on the header)
//               2  read_idx_labels(file)                          (classes 0..9)
//               3  load_fashion_mnist(folder, "train" or "t10k")  payload = u32 n | images file (n bytes) |
//                                                                 labels file (the rest)
//   flags & 4:  the harness gzip-compresses each file itself (the payload is raw IDX data, so the fuzzer
//               works on the IDX header and body); clear: the payload is written as it is (gzip framing,
//               CRC and concatenated members are fuzzed too).
//   flags & 8:  split "t10k" instead of "train" (mode 3).
//   flags & 16: with flags & 4, cut the compressed stream's last 5 bytes (a truncated .gz file).
// A cpdiff error (any std::exception) is the expected outcome for a bad file; anything else is a finding.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include "cpdiff/data/fashion_mnist.hpp"
#include "fuzz_util.hpp"

namespace {

volatile std::uint64_t sink;

const cpdiff_fuzz::scratch_dir& scratch() {
  static const cpdiff_fuzz::scratch_dir d("idx");
  return d;
}

// A single-member gzip stream of raw (zlib's deflate with the gzip wrapper).
std::string gzip(std::string_view raw) {
  z_stream zs{};
  if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) __builtin_trap();
  std::string out(deflateBound(&zs, static_cast<uLong>(raw.size())) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) __builtin_trap();
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string file_bytes(std::string_view payload, std::uint8_t flags) {
  if ((flags & 4) == 0) return std::string(payload);
  std::string gz = gzip(payload);
  if ((flags & 16) != 0 && gz.size() > 5) gz.resize(gz.size() - 5);
  return gz;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace cd = cpdiff::data;
  const auto& dir = scratch();
  dir.clear();
  cpdiff_fuzz::byte_reader in(data, size);
  const std::uint8_t flags = in.u8();
  try {
    switch (flags & 3) {
      case 0:
      case 1: {
        const auto file = dir / "images-idx3-ubyte.gz";
        if (!cpdiff_fuzz::write_bytes(file, file_bytes(in.rest(), flags))) return 0;
        const cd::idx_images im = (flags & 3) == 0 ? cd::read_idx_images(file)
                                                   : cd::read_idx_images(file, {28, 28, cd::fashion_mnist_train_count});
        if (im.pixels.size() != im.count * im.rows * im.cols) __builtin_trap();
        if (!im.pixels.empty()) sink = sink + im.pixels.front() + im.pixels.back();
        break;
      }
      case 2: {
        const auto file = dir / "labels-idx1-ubyte.gz";
        if (!cpdiff_fuzz::write_bytes(file, file_bytes(in.rest(), flags))) return 0;
        const cd::idx_labels lab = cd::read_idx_labels(file);
        for (std::uint8_t l : lab.labels)
          if (l >= cd::fashion_mnist_num_classes) __builtin_trap();
        sink = sink + lab.count();
        break;
      }
      default: {
        const std::string split = (flags & 8) != 0 ? "t10k" : "train";
        const std::uint32_t n = in.u32();
        const std::string_view images = in.take(n), labels = in.rest();
        if (!cpdiff_fuzz::write_bytes(cd::fashion_mnist_images_path(dir.path(), split), file_bytes(images, flags)) ||
            !cpdiff_fuzz::write_bytes(cd::fashion_mnist_labels_path(dir.path(), split), file_bytes(labels, flags)))
          return 0;
        const cd::fashion_mnist_split s = cd::load_fashion_mnist(dir.path(), split);
        if (s.images.size() != s.count * cd::fashion_mnist_pixels || s.labels.size() != s.count) __builtin_trap();
        for (float v : s.images)
          if (!(v >= 0.0f && v <= 1.0f)) __builtin_trap();
        sink = sink + s.count;
        break;
      }
    }
    cpdiff_fuzz::accepted("the IDX reader");
  } catch (const std::exception& e) {
    cpdiff_fuzz::refused("the IDX reader", e);
  }
  return 0;
}
