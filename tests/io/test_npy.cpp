#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>
#include <xtensor/xview.hpp>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/io/npy.hpp"
#include "cpdiff/io/npy_xtensor.hpp"
#include "io_test_util.hpp"

using cpdiff_io_test::temp_dir;
using Catch::Matchers::Contains;
namespace io = cpdiff::io;
namespace fs = std::filesystem;

namespace {

fs::path npy_fixture(const std::string& name) { return cpdiff_io_test::fixtures_dir() / "npy" / name; }

// A version-1.0 file with the given header text (not padded) and data.
std::vector<std::byte> make_npy(const std::string& header, const std::string& data, unsigned major = 1) {
  std::string out = "\x93NUMPY";
  out.push_back(static_cast<char>(major));
  out.push_back('\0');
  const std::size_t n = header.size();
  out.push_back(static_cast<char>(n & 0xFF));
  out.push_back(static_cast<char>((n >> 8) & 0xFF));
  if (major != 1) {
    out.push_back(static_cast<char>((n >> 16) & 0xFF));
    out.push_back(static_cast<char>((n >> 24) & 0xFF));
  }
  return cpdiff_io_test::to_bytes(out + header + data);
}

void require_rejected(const std::vector<std::byte>& bytes, const std::string& needle) {
  try {
    io::load_npy_bytes<float>(bytes, "bad.npy");
    FAIL("accepted a corrupt file; expected an error containing: " << needle);
  } catch (const cpdiff::io_error& e) {
    const std::string w = e.what();
    CHECK_THAT(w, Contains(needle));
    CHECK_THAT(w, Contains("bad.npy"));
  }
}

}  // namespace

TEST_CASE("npy round trips keep shape and values exactly", "[io][npy]") {
  temp_dir d;
  const std::vector<float> f = {1.5f, -0.0f, std::numeric_limits<float>::denorm_min(), 3e38f, -7.0f, 0.1f};
  io::save_npy(d / "f.npy", {2, 3}, f);
  const auto lf = io::load_npy<float>(d / "f.npy");
  CHECK(lf.shape == std::vector<std::size_t>{2, 3});
  CHECK(lf.data == f);
  CHECK(std::signbit(lf.data[1]));

  const std::vector<double> g = {M_PI, -1e-300, 1e300, 0.1, 2.0, -3.0, 4.0, 5.5};
  io::save_npy(d / "g.npy", {2, 2, 2}, g);
  CHECK(io::load_npy<double>(d / "g.npy").data == g);

  const std::vector<std::int64_t> i = {std::numeric_limits<std::int64_t>::min(), 0, 9007199254740993LL};
  io::save_npy(d / "i.npy", {3}, i);
  const auto li = io::load_npy<std::int64_t>(d / "i.npy");
  CHECK(li.shape == std::vector<std::size_t>{3});
  CHECK(li.data == i);

  const std::vector<std::uint8_t> u = {0, 128, 255, 1};
  io::save_npy(d / "u.npy", {2, 2}, u);
  CHECK(io::load_npy<std::uint8_t>(d / "u.npy").data == u);
  CHECK(io::load_npy<int>(d / "u.npy").data == std::vector<int>{0, 128, 255, 1});

  io::save_npy(d / "s.npy", {}, std::vector<double>{42.25});
  const auto ls = io::load_npy<double>(d / "s.npy");
  CHECK(ls.shape.empty());
  CHECK(ls.data == std::vector<double>{42.25});

  io::save_npy(d / "e.npy", {0, 5}, std::vector<float>{});
  const auto le = io::load_npy<float>(d / "e.npy");
  CHECK(le.shape == std::vector<std::size_t>{0, 5});
  CHECK(le.data.empty());

  // The data starts on a 64-byte boundary, as numpy writes it.
  const auto bytes = io::read_file_bytes(d / "f.npy");
  const auto h = io::read_npy_header(bytes, "f.npy");
  CHECK(h.data_offset % 64 == 0);
  CHECK(bytes[h.data_offset - 1] == std::byte{'\n'});
  CHECK(d.entries() == std::vector<std::string>{"e.npy", "f.npy", "g.npy", "i.npy", "s.npy", "u.npy"});
}

TEST_CASE("npy header text matches numpy's layout", "[io][npy]") {
  const std::vector<std::size_t> shape = {3};
  const std::vector<float> v = {1, 2, 3};
  const std::string s = cpdiff_io_test::to_string(io::to_npy_bytes<float>(shape, v));
  CHECK(s.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
  CHECK_THAT(s, Contains("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"));
  const std::vector<std::size_t> shape0;
  const std::string s0 = cpdiff_io_test::to_string(io::to_npy_bytes<double>(shape0, std::vector<double>{1.0}));
  CHECK_THAT(s0, Contains("'descr': '<f8'") && Contains("'shape': (), }"));
  const std::vector<std::size_t> shape2 = {2, 1};
  const std::vector<std::uint8_t> b = {1, 0};
  CHECK_THAT(cpdiff_io_test::to_string(io::to_npy_bytes<std::uint8_t>(shape2, b)), Contains("'|u1'") && Contains("(2, 1)"));
}

TEST_CASE("npy reads files written by numpy", "[io][npy]") {
  const auto f4 = io::load_npy<float>(npy_fixture("f4_2x3.npy"));
  CHECK(f4.shape == std::vector<std::size_t>{2, 3});
  for (std::size_t i = 0; i < 6; ++i) CHECK(f4.data[i] == static_cast<float>(i) * 0.5f - 1.0f);
  // The same file converted to double.
  CHECK(io::load_npy<double>(npy_fixture("f4_2x3.npy")).data[5] == 1.5);

  const auto sc = io::load_npy<double>(npy_fixture("f8_scalar.npy"));
  CHECK(sc.shape.empty());
  CHECK(sc.data == std::vector<double>{2.718281828459045});

  const auto em = io::load_npy<double>(npy_fixture("f8_empty.npy"));
  CHECK(em.shape == std::vector<std::size_t>{0, 3});
  CHECK(em.data.empty());

  const auto i8 = io::load_npy<std::int64_t>(npy_fixture("i8_5.npy"));
  CHECK(i8.data == std::vector<std::int64_t>{-2000000000000LL, -1000000000000LL, 0, 1000000000000LL, 2000000000000LL});
  CHECK(io::load_npy<std::int32_t>(npy_fixture("i4_3.npy")).data == std::vector<std::int32_t>{-7, 0, 2147483647});
  CHECK(io::load_npy<std::uint8_t>(npy_fixture("u1_4.npy")).data == std::vector<std::uint8_t>{0, 1, 128, 255});
  CHECK(io::load_npy<std::uint8_t>(npy_fixture("b1_4.npy")).data == std::vector<std::uint8_t>{1, 0, 0, 1});
  CHECK(io::load_npy<float>(npy_fixture("f2_3.npy")).data == std::vector<float>{1.0f, -0.5f, 65504.0f});

  const auto be = io::load_npy<float>(npy_fixture("be_f4_2x2.npy"));
  CHECK(be.shape == std::vector<std::size_t>{2, 2});
  CHECK(be.data == std::vector<float>{0.25f, 1.25f, 2.25f, 3.25f});

  CHECK(io::load_npy<float>(npy_fixture("v2_f4_3.npy")).data == std::vector<float>{1, 2, 3});

  REQUIRE_THROWS_WITH(io::load_npy<float>(npy_fixture("fortran_2x2.npy")),
                      Contains("fortran_order is True") && Contains("fortran_2x2.npy"));
  REQUIRE_THROWS_WITH(io::load_npy<float>(npy_fixture("no_such.npy")), Contains("no_such.npy"));
}

TEST_CASE("npy rejects corrupt and unsupported files", "[io][npy][corrupt]") {
  const std::string ok_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";
  const std::string data(8, '\0');
  REQUIRE(io::load_npy_bytes<float>(make_npy(ok_header, data)).data.size() == 2);
  REQUIRE(io::load_npy_bytes<float>(make_npy(ok_header, data, 2)).data.size() == 2);

  require_rejected(cpdiff_io_test::to_bytes("\x93NUM"), "too short");
  require_rejected(cpdiff_io_test::to_bytes("PK\x03\x04 this is a zip file"), "bad magic");
  {
    auto b = make_npy(ok_header, data);
    b[6] = std::byte{4};
    require_rejected(b, "unsupported npy format version 4.0");
  }
  {
    auto b = make_npy(ok_header, data);
    b[8] = std::byte{0xFF};
    b[9] = std::byte{0x7F};
    require_rejected(b, "runs past the end of the file");
  }
  require_rejected(make_npy(ok_header, std::string(7, '\0')), "truncated");
  require_rejected(make_npy(ok_header, std::string(12, '\0')), "4 trailing byte(s)");
  require_rejected(make_npy("{'descr': '<f4', 'shape': (2,), }", data), "no 'fortran_order'");
  require_rejected(make_npy("{'fortran_order': False, 'shape': (2,), }", data), "no 'descr'");
  require_rejected(make_npy("{'descr': '<f4', 'fortran_order': False}", data), "no 'shape'");
  require_rejected(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", data),
                   "unexpected key 'x'");
  require_rejected(make_npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", data),
                   "duplicate key 'descr'");
  require_rejected(make_npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", data), "unsupported descr '<c8'");
  require_rejected(make_npy("{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }", data), "no byte order");
  require_rejected(make_npy("{'descr': 'f4', 'fortran_order': False, 'shape': (2,), }", data), "unsupported descr");
  require_rejected(make_npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", data),
                   "structured dtypes are not supported");
  require_rejected(make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", data), "fortran_order is True");
  require_rejected(make_npy("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", data), "not True or False");
  require_rejected(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", data),
                   "other than non-negative integers");
  require_rejected(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", data), "'shape' is not a tuple");
  require_rejected(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2 2), }", data), "expected ',' or ')'");
  require_rejected(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", data),
                   "too large");
  require_rejected(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", data),
                   "shape overflows");
  require_rejected(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), ", data), "truncated");
  require_rejected(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk", data),
                   "unexpected text after the header dict");
  require_rejected(make_npy("['descr', '<f4']", data), "does not start with '{'");
  require_rejected(make_npy("{descr: '<f4'}", data), "expected a quoted string");
}

TEST_CASE("npy truncations and random corruption only ever raise io_error", "[io][npy][corrupt]") {
  const std::vector<std::size_t> shape = {2, 3};
  const std::vector<double> v = {1, 2, 3, 4, 5, 6};
  const auto good = io::to_npy_bytes<double>(shape, v);
  for (std::size_t len = 0; len < good.size(); ++len) {
    const std::vector<std::byte> cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len));
    CHECK_THROWS_AS(io::load_npy_bytes<double>(cut), cpdiff::io_error);
  }
  std::mt19937 rng(99);
  for (int trial = 0; trial < 3000; ++trial) {
    auto b = good;
    b[rng() % 128] = static_cast<std::byte>(rng() & 0xFF);
    try {
      io::load_npy_bytes<double>(b);
    } catch (const cpdiff::io_error&) {
    }
  }
}

TEST_CASE("save_npy checks the value count and leaves no file on error", "[io][npy]") {
  temp_dir d;
  REQUIRE_THROWS_AS(io::save_npy(d / "x.npy", {2, 2}, std::vector<float>{1, 2, 3}), cpdiff::shape_error);
  // A product that wraps to the value count (2^32 * 2^32 = 0 mod 2^64) is refused, not written.
  REQUIRE_THROWS_AS(io::save_npy(d / "x.npy", {std::size_t{1} << 32, std::size_t{1} << 32}, std::vector<float>{}),
                    cpdiff::shape_error);
  CHECK(d.entries().empty());
  REQUIRE_THROWS_AS(io::save_npy(d / "missing" / "x.npy", {1}, std::vector<float>{1}), cpdiff::io_error);
}

TEST_CASE("npy xtensor adaptors and interop with xt::load_npy / xt::dump_npy", "[io][npy][xtensor]") {
  temp_dir d;
  xt::xarray<double> a = {{1.0, 2.0, 3.0}, {4.0, 5.0, 6.5}};
  io::save_npy_xtensor(d / "a.npy", a);
  // xtensor reads our file...
  const auto by_xt = xt::load_npy<double>((d / "a.npy").string());
  CHECK(by_xt == a);
  // ...we read xtensor's file.
  xt::xarray<float> b = {{{1.f, 2.f}, {3.f, 4.f}}, {{5.f, 6.f}, {7.f, 8.5f}}};
  xt::dump_npy((d / "b.npy").string(), b);
  const auto lb = io::load_npy_xarray<float>(d / "b.npy");
  CHECK(lb == b);
  CHECK(lb.shape().size() == 3);
  // A strided view is written in row-major order.
  const auto col = io::from_xtensor(xt::view(a, xt::all(), 1));
  CHECK(col.shape == std::vector<std::size_t>{2});
  CHECK(col.data == std::vector<double>{2.0, 5.0});
  const auto back = io::to_xtensor(io::load_npy<float>(npy_fixture("f4_2x3.npy")));
  CHECK(back(1, 2) == 1.5f);
}

TEST_CASE("npy xtensor adaptors refuse an empty shape whose strides overflow, and take the others", "[io][npy][xtensor]") {
  // tests/fuzz/regress/npy_xtensor/: xtensor's signed strides overflowed (undefined behaviour) on such shapes.
  temp_dir d;
  const std::size_t big = std::size_t{1} << 63;
  io::save_npy<float>(d / "e.npy", std::vector<std::size_t>{0, big, big}, std::vector<float>{});
  CHECK(io::load_npy<float>(d / "e.npy").data.empty());  // the reader takes it: it holds no values
  REQUIRE_THROWS_AS(io::load_npy_xarray<float>(d / "e.npy"), cpdiff::shape_error);
  REQUIRE_THROWS_WITH(io::load_npy_xarray<float>(d / "e.npy"),
                      Contains("io::load_npy_xarray") && Contains("e.npy") &&
                          Contains("(0, 9223372036854775808, 9223372036854775808)") && Contains("from axis 2"));
  CHECK_THROWS_WITH(io::to_xtensor(io::npy_array<float>{{0, big}, {}}), Contains("io::to_xtensor") && Contains("from axis 1"));
  // A zero to the right of the large dimensions: every stride is 0, xtensor's arithmetic does not overflow.
  io::save_npy<double>(d / "z.npy", std::vector<std::size_t>{big, big, 0}, std::vector<double>{});
  const auto z = io::load_npy_xarray<double>(d / "z.npy");
  CHECK(z.size() == 0);
  CHECK(z.dimension() == 3);
}

TEST_CASE("load_npy to an integer type refuses NaN, infinite and out-of-range values", "[io][npy]") {
  auto f32 = [](std::vector<float> v) { return io::to_npy_bytes<float>(std::vector<std::size_t>{v.size()}, v); };
  auto refused = [](const std::vector<std::byte>& b, auto type_tag) {
    using T = decltype(type_tag);
    try {
      io::load_npy_bytes<T>(b, "ints.npy");
      FAIL("accepted a value the integer type cannot hold");
    } catch (const cpdiff::io_error& e) {
      CHECK_THAT(e.what(), Contains("ints.npy") && Contains("element 1") && Contains("does not fit"));
    }
  };
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  refused(f32({1.0f, nan}), std::int32_t{});
  refused(f32({1.0f, inf}), std::int32_t{});
  refused(f32({1.0f, -inf}), std::int64_t{});
  refused(f32({1.0f, 3.0e9f}), std::int32_t{});
  refused(f32({1.0f, -2.0f}), std::uint32_t{});
  refused(f32({1.0f, 9.3e18f}), std::int64_t{});
  refused(io::to_npy_bytes<std::int64_t>(std::vector<std::size_t>{2}, std::vector<std::int64_t>{0, 1LL << 40}),
          std::int32_t{});
  refused(io::to_npy_bytes<std::uint64_t>(std::vector<std::size_t>{2}, std::vector<std::uint64_t>{0, ~0ULL}),
          std::int64_t{});
  // In range: truncated toward zero as before, the extremes included.
  CHECK(io::load_npy_bytes<std::int32_t>(f32({-2147483648.0f, 2147483520.0f, -1.9f, 0.5f})).data ==
        std::vector<std::int32_t>{-2147483647 - 1, 2147483520, -1, 0});
  CHECK(io::load_npy_bytes<std::uint8_t>(f32({255.9f, -0.5f})).data == std::vector<std::uint8_t>{255, 0});
  CHECK(io::load_npy_bytes<float>(f32({nan})).data.size() == 1);  // floats pass through
}
