// Tests for cpdiff/data/fashion_mnist.hpp: the real Debian dataset files and hand-made corrupt
// IDX .gz files written at test time with zlib's gzwrite.
#include <catch2/catch.hpp>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/data/fashion_mnist.hpp"

namespace fs = std::filesystem;
using namespace cpdiff::data;

namespace {

// ----- helpers ---------------------------------------------------------------------------------

// Matches an exception whose what() contains `text`; combine with &&.
class message_has : public Catch::MatcherBase<std::exception> {
 public:
  explicit message_has(std::string text) : text_(std::move(text)) {}
  bool match(const std::exception& e) const override {
    return std::string(e.what()).find(text_) != std::string::npos;
  }
  std::string describe() const override { return "has a message containing \"" + text_ + "\""; }

 private:
  std::string text_;
};
message_has Has(std::string text) { return message_has(std::move(text)); }

// A fresh directory under the system temp dir, removed at scope exit.
struct temp_dir {
  fs::path path;
  temp_dir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("cpdiff_fmnist_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  fs::path operator/(const std::string& name) const { return path / name; }
};

using bytes = std::vector<std::uint8_t>;

void put_be32(bytes& b, std::uint32_t v) {
  b.push_back(static_cast<std::uint8_t>(v >> 24));
  b.push_back(static_cast<std::uint8_t>(v >> 16));
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v));
}

// IDX image file bytes: header claiming count x rows x cols, then body_bytes pixel bytes
// (pixel i has value i % 251).
bytes image_file(std::uint32_t count, std::uint32_t rows, std::uint32_t cols, std::size_t body_bytes,
                 std::uint32_t magic = 0x00000803u) {
  bytes b;
  put_be32(b, magic);
  put_be32(b, count);
  put_be32(b, rows);
  put_be32(b, cols);
  for (std::size_t i = 0; i < body_bytes; ++i) b.push_back(static_cast<std::uint8_t>(i % 251));
  return b;
}

bytes image_file(std::uint32_t count, std::uint32_t rows, std::uint32_t cols) {
  return image_file(count, rows, cols, std::size_t{count} * rows * cols);
}

// IDX label file bytes: header claiming count, then the given labels.
bytes label_file(std::uint32_t count, const bytes& labels, std::uint32_t magic = 0x00000801u) {
  bytes b;
  put_be32(b, magic);
  put_be32(b, count);
  b.insert(b.end(), labels.begin(), labels.end());
  return b;
}

bytes cyclic_labels(std::size_t n) {
  bytes l(n);
  for (std::size_t i = 0; i < n; ++i) l[i] = static_cast<std::uint8_t>(i % 10);
  return l;
}

void write_gz(const fs::path& p, const bytes& data) {
  gzFile f = gzopen(p.string().c_str(), "wb");
  REQUIRE(f != nullptr);
  if (!data.empty()) REQUIRE(gzwrite(f, data.data(), static_cast<unsigned>(data.size())) == int(data.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

void write_raw(const fs::path& p, const bytes& data) {
  std::ofstream os(p, std::ios::binary);
  os.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  REQUIRE(os.good());
}

bytes read_raw(const fs::path& p) {
  std::ifstream is(p, std::ios::binary);
  return bytes((std::istreambuf_iterator<char>(is)), std::istreambuf_iterator<char>());
}

// The real dataset: the tests below FAIL (not skip) when it is absent.
const fs::path dataset_dir{default_fashion_mnist_dir};

void require_dataset() {
  for (const char* name : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                           "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}) {
    if (!fs::exists(dataset_dir / name))
      FAIL("Fashion-MNIST is not installed: " << (dataset_dir / name).string()
                                              << " is missing. Run `apt-get install dataset-fashion-mnist`.");
  }
}

struct pixel_stats {
  double mean = 0, stddev = 0, zero_fraction = 0;
  float min = 1, max = 0;
};

pixel_stats stats_of(const std::vector<float>& v) {
  pixel_stats s;
  double sum = 0, sq = 0;
  std::size_t zeros = 0;
  for (float x : v) {
    sum += x;
    sq += double(x) * x;
    zeros += (x == 0.0f);
    s.min = std::min(s.min, x);
    s.max = std::max(s.max, x);
  }
  const double n = static_cast<double>(v.size());
  s.mean = sum / n;
  s.stddev = std::sqrt(sq / n - s.mean * s.mean);
  s.zero_fraction = static_cast<double>(zeros) / n;
  return s;
}

}  // namespace

// ----- real data -------------------------------------------------------------------------------

TEST_CASE("fashion-mnist: class names", "[data][fashion_mnist]") {
  REQUIRE(fashion_mnist_class_names.size() == 10);
  CHECK(fashion_mnist_class_names[0] == "T-shirt/top");
  CHECK(fashion_mnist_class_names[1] == "Trouser");
  CHECK(fashion_mnist_class_names[2] == "Pullover");
  CHECK(fashion_mnist_class_names[3] == "Dress");
  CHECK(fashion_mnist_class_names[4] == "Coat");
  CHECK(fashion_mnist_class_names[5] == "Sandal");
  CHECK(fashion_mnist_class_names[6] == "Shirt");
  CHECK(fashion_mnist_class_names[7] == "Sneaker");
  CHECK(fashion_mnist_class_names[8] == "Bag");
  CHECK(fashion_mnist_class_names[9] == "Ankle boot");
  CHECK(fashion_mnist_class_name(9) == "Ankle boot");
  CHECK_THROWS_AS(fashion_mnist_class_name(10), cpdiff::config_error);
}

TEST_CASE("fashion-mnist: raw IDX files of the installed dataset", "[data][fashion_mnist][dataset]") {
  require_dataset();
  const auto train = read_idx_images(dataset_dir / "train-images-idx3-ubyte.gz");
  CHECK(train.count == 60000);
  CHECK(train.rows == 28);
  CHECK(train.cols == 28);
  CHECK(train.image_size() == 784);
  CHECK(train.pixels.size() == 47040000);
  // Sum of the first and last image's bytes (checked against Python's gzip module).
  std::uint64_t first = 0, last = 0;
  for (std::size_t i = 0; i < 784; ++i) {
    first += train.pixels[i];
    last += train.pixels[train.pixels.size() - 784 + i];
  }
  CHECK(first == 76247);
  CHECK(last == 16684);

  const auto test = read_idx_images(dataset_dir / "t10k-images-idx3-ubyte.gz");
  CHECK(test.count == 10000);
  CHECK(test.rows == 28);
  CHECK(test.cols == 28);
  CHECK(test.pixels.size() == 7840000);

  const auto train_labels = read_idx_labels(dataset_dir / "train-labels-idx1-ubyte.gz");
  const auto test_labels = read_idx_labels(dataset_dir / "t10k-labels-idx1-ubyte.gz");
  CHECK(train_labels.count() == 60000);
  CHECK(test_labels.count() == 10000);
  CHECK(train_labels.labels[0] == 9);  // the first training image is an ankle boot
  CHECK(test_labels.labels[0] == 9);
}

TEST_CASE("fashion-mnist: train split", "[data][fashion_mnist][dataset]") {
  require_dataset();
  const auto s = load_fashion_mnist("train");
  REQUIRE(s.count == 60000);
  REQUIRE(s.images.size() == 60000u * 784u);
  REQUIRE(s.labels.size() == 60000);

  std::array<std::size_t, 10> hist{};
  std::size_t out_of_range = 0;
  for (auto l : s.labels) {
    if (l < 10) ++hist[l];
    else ++out_of_range;
  }
  CHECK(out_of_range == 0);
  for (std::size_t c = 0; c < 10; ++c) {
    INFO("class " << c << " (" << fashion_mnist_class_names[c] << ")");
    CHECK(hist[c] == 6000);
  }

  const auto st = stats_of(s.images);
  INFO("train pixels: mean " << st.mean << " std " << st.stddev << " zeros " << st.zero_fraction);
  CHECK(st.min == 0.0f);
  CHECK(st.max == 1.0f);
  CHECK(st.mean == Approx(0.2860406).margin(1e-5));
  CHECK(st.stddev == Approx(0.3530242).margin(1e-5));
  CHECK(st.zero_fraction == Approx(0.5020514).margin(1e-6));
  CHECK(s.labels[0] == 9);
  CHECK(s.labels[1] == 0);
  CHECK(s.labels[3] == 3);
}

TEST_CASE("fashion-mnist: t10k split, explicit directory and max_count", "[data][fashion_mnist][dataset]") {
  require_dataset();
  const auto s = load_fashion_mnist(dataset_dir, "t10k");
  REQUIRE(s.count == 10000);
  REQUIRE(s.images.size() == 10000u * 784u);
  std::array<std::size_t, 10> hist{};
  for (auto l : s.labels) ++hist[l];
  for (std::size_t c = 0; c < 10; ++c) CHECK(hist[c] == 1000);
  const auto st = stats_of(s.images);
  INFO("t10k pixels: mean " << st.mean << " std " << st.stddev);
  CHECK(st.mean == Approx(0.2868493).margin(1e-5));
  CHECK(st.stddev == Approx(0.3524442).margin(1e-5));

  const auto head = load_fashion_mnist(dataset_dir, "t10k", 100);
  REQUIRE(head.count == 100);
  REQUIRE(head.images.size() == 100u * 784u);
  REQUIRE(head.labels.size() == 100);
  CHECK(std::equal(head.images.begin(), head.images.end(), s.images.begin()));
  CHECK(std::equal(head.labels.begin(), head.labels.end(), s.labels.begin()));
  const std::vector<std::uint8_t> first10 = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
  CHECK(std::equal(first10.begin(), first10.end(), head.labels.begin()));

  const auto zero = load_fashion_mnist(dataset_dir, "t10k", 0);
  CHECK(zero.count == 0);
  CHECK(zero.images.empty());
  CHECK(zero.labels.empty());

  const auto more = load_fashion_mnist(dataset_dir, "t10k", 1000000);
  CHECK(more.count == 10000);
}

// ----- small hand-made files -------------------------------------------------------------------

TEST_CASE("idx: valid small files round-trip", "[data][idx]") {
  temp_dir d;
  write_gz(d / "img.gz", image_file(3, 2, 5));
  const auto img = read_idx_images(d / "img.gz");
  CHECK(img.count == 3);
  CHECK(img.rows == 2);
  CHECK(img.cols == 5);
  REQUIRE(img.pixels.size() == 30);
  for (std::size_t i = 0; i < 30; ++i) CHECK(img.pixels[i] == i % 251);

  write_gz(d / "lab.gz", label_file(4, {0, 9, 3, 7}));
  const auto lab = read_idx_labels(d / "lab.gz");
  CHECK(lab.labels == bytes{0, 9, 3, 7});

  // Zero items is a valid (empty) file.
  write_gz(d / "empty_img.gz", image_file(0, 28, 28));
  CHECK(read_idx_images(d / "empty_img.gz").pixels.empty());
  write_gz(d / "empty_lab.gz", label_file(0, {}));
  CHECK(read_idx_labels(d / "empty_lab.gz").labels.empty());
}

TEST_CASE("idx: a body larger than one read chunk", "[data][idx]") {
  temp_dir d;
  write_gz(d / "big.gz", image_file(2000, 28, 28));  // 1.5 MB, many inflate rounds
  const auto img = read_idx_images(d / "big.gz");
  REQUIRE(img.pixels.size() == 2000u * 784u);
  CHECK(img.pixels[1567999] == 1567999 % 251);
}

TEST_CASE("idx: concatenated gzip members are read as one stream", "[data][idx]") {
  temp_dir d;
  const bytes all = image_file(2, 3, 3);
  const bytes a(all.begin(), all.begin() + 10), b(all.begin() + 10, all.end());
  write_gz(d / "a.gz", a);
  write_gz(d / "b.gz", b);
  bytes joined = read_raw(d / "a.gz");
  const bytes second = read_raw(d / "b.gz");
  joined.insert(joined.end(), second.begin(), second.end());
  write_raw(d / "ab.gz", joined);
  const auto img = read_idx_images(d / "ab.gz");
  CHECK(img.count == 2);
  CHECK(img.pixels == bytes(all.begin() + 16, all.end()));
}

TEST_CASE("idx: missing file", "[data][idx][errors]") {
  temp_dir d;
  CHECK_THROWS_MATCHES(read_idx_images(d / "nope.gz"), cpdiff::io_error,
                       Has("read_idx_images") && Has("nope.gz") && Has("file not found"));
  CHECK_THROWS_MATCHES(read_idx_labels(d / "nope.gz"), cpdiff::io_error,
                       Has("read_idx_labels") && Has("nope.gz") && Has("file not found"));
  CHECK_THROWS_MATCHES(read_idx_images(d.path), cpdiff::io_error, Has("is a directory"));
}

TEST_CASE("idx: not a gzip file", "[data][idx][errors]") {
  temp_dir d;
  write_raw(d / "plain.gz", image_file(1, 2, 2));  // uncompressed IDX
  CHECK_THROWS_MATCHES(read_idx_images(d / "plain.gz"), cpdiff::io_error,
                       Has("plain.gz") && Has("not a gzip file") &&
                           Has("first bytes 0x00 0x00 0x08 0x03"));
  write_raw(d / "empty.gz", {});
  CHECK_THROWS_MATCHES(read_idx_labels(d / "empty.gz"), cpdiff::io_error,
                       Has("empty.gz") && Has("not a gzip file") && Has("empty"));
}

TEST_CASE("idx: corrupt gzip streams", "[data][idx][errors]") {
  temp_dir d;
  write_gz(d / "good.gz", image_file(50, 28, 28));
  const bytes good = read_raw(d / "good.gz");
  REQUIRE(good.size() > 64);

  SECTION("truncated compressed data") {
    write_raw(d / "cut.gz", bytes(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(good.size() / 2)));
    CHECK_THROWS_MATCHES(read_idx_images(d / "cut.gz"), cpdiff::io_error,
                         Has("cut.gz") && Has("corrupt gzip stream") && Has("ends early"));
  }
  SECTION("gzip trailer missing") {
    write_raw(d / "notrailer.gz", bytes(good.begin(), good.end() - 8));
    CHECK_THROWS_MATCHES(read_idx_images(d / "notrailer.gz"), cpdiff::io_error,
                         Has("notrailer.gz") && Has("corrupt gzip stream"));
  }
  SECTION("CRC mismatch") {
    bytes bad = good;
    bad[bad.size() - 8] ^= 0xff;  // first byte of the CRC-32 in the trailer
    write_raw(d / "crc.gz", bad);
    CHECK_THROWS_MATCHES(read_idx_images(d / "crc.gz"), cpdiff::io_error,
                         Has("crc.gz") && Has("corrupt gzip stream") &&
                             Has("incorrect data check"));
  }
  SECTION("garbage in the deflate data") {
    bytes bad = good;
    for (std::size_t i = 12; i < bad.size() - 8; ++i) bad[i] = 0xff;
    write_raw(d / "garbage.gz", bad);
    CHECK_THROWS_MATCHES(read_idx_images(d / "garbage.gz"), cpdiff::io_error,
                         Has("garbage.gz") && Has("corrupt gzip stream"));
  }
  SECTION("non-gzip bytes after the gzip stream") {
    bytes bad = good;
    bad.insert(bad.end(), {'j', 'u', 'n', 'k'});
    write_raw(d / "after.gz", bad);
    CHECK_THROWS_MATCHES(read_idx_images(d / "after.gz"), cpdiff::io_error,
                         Has("after.gz") && Has("corrupt gzip stream"));
  }
}

TEST_CASE("idx: wrong magic", "[data][idx][errors]") {
  temp_dir d;
  // A label file given to the image reader, and the other way round.
  write_gz(d / "labels.gz", label_file(3, {1, 2, 3}));
  write_gz(d / "images.gz", image_file(1, 2, 2));
  CHECK_THROWS_MATCHES(read_idx_images(d / "labels.gz"), cpdiff::io_error,
                       Has("labels.gz") && Has("wrong IDX magic 0x00000801") &&
                           Has("expected 0x00000803"));
  CHECK_THROWS_MATCHES(read_idx_labels(d / "images.gz"), cpdiff::io_error,
                       Has("images.gz") && Has("wrong IDX magic 0x00000803") &&
                           Has("expected 0x00000801"));
  write_gz(d / "float.gz", image_file(1, 2, 2, 4, 0x00000d03u));  // float32 IDX
  CHECK_THROWS_MATCHES(read_idx_images(d / "float.gz"), cpdiff::io_error,
                       Has("wrong IDX magic 0x00000d03"));
}

TEST_CASE("idx: truncated header and bad dimensions", "[data][idx][errors]") {
  temp_dir d;
  bytes h = image_file(1, 28, 28, 0);
  h.resize(10);
  write_gz(d / "short.gz", h);
  CHECK_THROWS_MATCHES(read_idx_images(d / "short.gz"), cpdiff::io_error,
                       Has("short.gz") && Has("truncated IDX header") &&
                           Has("expected 16 header bytes, file has 10"));
  write_gz(d / "magic_only.gz", bytes{0, 0});
  CHECK_THROWS_MATCHES(read_idx_images(d / "magic_only.gz"), cpdiff::io_error,
                       Has("expected 16 header bytes, file has 2"));
  write_gz(d / "lshort.gz", bytes{0, 0, 8, 1, 0});
  CHECK_THROWS_MATCHES(read_idx_labels(d / "lshort.gz"), cpdiff::io_error,
                       Has("expected 8 header bytes, file has 5"));
  write_gz(d / "zero.gz", image_file(5, 0, 28, 0));
  CHECK_THROWS_MATCHES(read_idx_images(d / "zero.gz"), cpdiff::io_error,
                       Has("zero.gz") && Has("invalid image size 0x28"));
}

TEST_CASE("idx: truncated body", "[data][idx][errors]") {
  temp_dir d;
  // Header claims 60000 28x28 images; only 1234 pixel bytes follow.
  write_gz(d / "trunc.gz", image_file(60000, 28, 28, 1234));
  CHECK_THROWS_MATCHES(read_idx_images(d / "trunc.gz"), cpdiff::io_error,
                       Has("read_idx_images") && Has("trunc.gz") &&
                           Has("expected 47040000 pixel bytes") && Has("file has 1234"));
  // A huge claimed size must not be allocated up front.
  write_gz(d / "huge.gz", image_file(0xffffffffu, 0xffffu, 0xffffu, 100));
  CHECK_THROWS_MATCHES(read_idx_images(d / "huge.gz"), cpdiff::io_error,
                       Has("huge.gz") && Has("file has 100"));

  write_gz(d / "ltrunc.gz", label_file(100, cyclic_labels(37)));
  CHECK_THROWS_MATCHES(read_idx_labels(d / "ltrunc.gz"), cpdiff::io_error,
                       Has("read_idx_labels") && Has("ltrunc.gz") &&
                           Has("expected 100 label bytes, file has 37"));
}

TEST_CASE("idx: trailing garbage after the data", "[data][idx][errors]") {
  temp_dir d;
  write_gz(d / "extra.gz", image_file(2, 28, 28, 2 * 784 + 5));
  CHECK_THROWS_MATCHES(read_idx_images(d / "extra.gz"), cpdiff::io_error,
                       Has("extra.gz") && Has("expected 1568 pixel bytes, file has 1573") &&
                           Has("5 trailing bytes"));
  write_gz(d / "lextra.gz", label_file(3, {1, 2, 3, 4}));
  CHECK_THROWS_MATCHES(read_idx_labels(d / "lextra.gz"), cpdiff::io_error,
                       Has("lextra.gz") && Has("expected 3 label bytes, file has 4") &&
                           Has("1 trailing bytes"));
}

TEST_CASE("idx: labels out of range", "[data][idx][errors]") {
  temp_dir d;
  write_gz(d / "lab.gz", label_file(5, {0, 9, 3, 10, 2}));
  CHECK_THROWS_MATCHES(read_idx_labels(d / "lab.gz"), cpdiff::io_error,
                       Has("lab.gz") && Has("label 10 at index 3") &&
                           Has("out of range [0, 9]"));
  // num_classes = 0 disables the check; a larger class count accepts it.
  CHECK(read_idx_labels(d / "lab.gz", 0).labels[3] == 10);
  CHECK(read_idx_labels(d / "lab.gz", 11).labels[3] == 10);
  write_gz(d / "lab255.gz", label_file(1, {255}));
  CHECK_THROWS_MATCHES(read_idx_labels(d / "lab255.gz"), cpdiff::io_error, Has("label 255 at index 0"));
}

TEST_CASE("load_fashion_mnist: checks across the two files", "[data][fashion_mnist][errors]") {
  temp_dir d;
  SECTION("a small consistent split in another directory") {
    write_gz(d / "train-images-idx3-ubyte.gz", image_file(12, 28, 28));
    write_gz(d / "train-labels-idx1-ubyte.gz", label_file(12, cyclic_labels(12)));
    const auto s = load_fashion_mnist(d.path, "train");
    REQUIRE(s.count == 12);
    REQUIRE(s.images.size() == 12u * 784u);
    CHECK(s.images[0] == 0.0f);
    CHECK(s.images[250] == Approx(250.0f / 255.0f));
    CHECK(s.labels[11] == 1);
    const auto part = load_fashion_mnist(d.path, "train", 5);
    CHECK(part.count == 5);
    CHECK(part.images.size() == 5u * 784u);
    CHECK(part.labels.size() == 5);
  }
  SECTION("image and label counts differ") {
    write_gz(d / "t10k-images-idx3-ubyte.gz", image_file(12, 28, 28));
    write_gz(d / "t10k-labels-idx1-ubyte.gz", label_file(11, cyclic_labels(11)));
    CHECK_THROWS_MATCHES(load_fashion_mnist(d.path, "t10k"), cpdiff::io_error,
                         Has("load_fashion_mnist") && Has("has 12 images") &&
                             Has("has 11 labels"));
  }
  SECTION("images are not 28x28") {
    write_gz(d / "train-images-idx3-ubyte.gz", image_file(2, 32, 32));
    write_gz(d / "train-labels-idx1-ubyte.gz", label_file(2, {1, 2}));
    CHECK_THROWS_MATCHES(load_fashion_mnist(d.path, "train"), cpdiff::io_error,
                         Has("expected 28x28 images, file has 32x32"));
  }
  SECTION("a label file with a bad label") {
    write_gz(d / "train-images-idx3-ubyte.gz", image_file(2, 28, 28));
    write_gz(d / "train-labels-idx1-ubyte.gz", label_file(2, {1, 12}));
    CHECK_THROWS_MATCHES(load_fashion_mnist(d.path, "train"), cpdiff::io_error,
                         Has("train-labels-idx1-ubyte.gz") && Has("label 12 at index 1"));
  }
  SECTION("dataset missing") {
    CHECK_THROWS_MATCHES(load_fashion_mnist(d.path / "nowhere", "train"), cpdiff::io_error,
                         Has("train-images-idx3-ubyte.gz") && Has("not found") &&
                             Has("apt-get install dataset-fashion-mnist"));
    write_gz(d / "train-images-idx3-ubyte.gz", image_file(2, 28, 28));
    CHECK_THROWS_MATCHES(load_fashion_mnist(d.path, "train"), cpdiff::io_error,
                         Has("train-labels-idx1-ubyte.gz") &&
                             Has("apt-get install dataset-fashion-mnist"));
  }
  SECTION("unknown split") {
    CHECK_THROWS_MATCHES(load_fashion_mnist(d.path, "test"), cpdiff::config_error,
                         Has("unknown split 'test'"));
  }
}

TEST_CASE("load_fashion_mnist checks the IDX header before inflating the body", "[data][fashion_mnist][errors]") {
  temp_dir d;
  const auto images = d / "train-images-idx3-ubyte.gz";
  const auto labels = d / "train-labels-idx1-ubyte.gz";
  write_gz(labels, label_file(1, {1}));
  SECTION("a 16384x16384 image is refused from its header") {
    write_gz(images, image_file(1, 16384, 16384, 1000));
    CHECK_THROWS_MATCHES(load_fashion_mnist(d.path, "train"), cpdiff::io_error,
                         Has("train-images-idx3-ubyte.gz") && Has("expected 28x28 images, file has 16384x16384"));
  }
  SECTION("more images or labels than Fashion-MNIST has") {
    write_gz(images, image_file(1000000, 28, 28, 1000));
    CHECK_THROWS_MATCHES(load_fashion_mnist(d.path, "train"), cpdiff::io_error,
                         Has("claims 1000000 images") && Has("60000"));
    write_gz(images, image_file(1, 28, 28));
    write_gz(labels, label_file(1000000, {1, 2}));
    CHECK_THROWS_MATCHES(load_fashion_mnist(d.path, "train"), cpdiff::io_error,
                         Has("train-labels-idx1-ubyte.gz") && Has("claims 1000000 labels"));
  }
  SECTION("a FIFO is refused instead of waited on") {
    fs::remove(images);
    REQUIRE(::mkfifo(images.c_str(), 0600) == 0);
    CHECK_THROWS_MATCHES(read_idx_images(images), cpdiff::io_error, Has("not a regular file"));
  }
}
