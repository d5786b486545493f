#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/io/safetensors.hpp"
#include "io_test_util.hpp"

using cpdiff_io_test::temp_dir;
using Catch::Matchers::Contains;
namespace io = cpdiff::io;
using io::st_dtype;

namespace {

// 8-byte length + header (padded to 8 unless told otherwise) + data.
std::vector<std::byte> make_file(const std::string& header, const std::string& data, bool pad = true) {
  std::string h = header;
  if (pad) h.append((8 - h.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const std::uint64_t n = h.size();
  std::memcpy(out.data(), &n, 8);
  return cpdiff_io_test::to_bytes(out + h + data);
}

// The file must be rejected with an io_error naming the file and containing `needle`.
void require_rejected(const std::vector<std::byte>& bytes, const std::string& needle) {
  try {
    io::safetensors_file::from_bytes(bytes, "bad.safetensors");
    FAIL("accepted a corrupt file; expected an error containing: " << needle);
  } catch (const cpdiff::io_error& e) {
    const std::string w = e.what();
    CHECK_THAT(w, Contains(needle));
    CHECK_THAT(w, Contains("bad.safetensors"));
  }
}
void require_rejected(const std::string& header, const std::string& data, const std::string& needle) {
  INFO("header: " << header);
  require_rejected(make_file(header, data), needle);
}

std::string zeros(std::size_t n) { return std::string(n, '\0'); }

}  // namespace

TEST_CASE("safetensors round trip: F32, F64, metadata, name order and alignment", "[io][safetensors]") {
  io::safetensors_writer w;
  const std::vector<float> a = {1.5f, -2.25f, 3.0e-7f, std::numeric_limits<float>::max(), -0.0f, 42.0f};
  const std::vector<double> b = {0.1, -1.0 / 3.0, 6.02214076e23};
  w.add("zeta.weight", {2, 3}, a);
  w.add("alpha.bias", {3}, b, st_dtype::F64);
  w.set_metadata("format", "pt");
  w.set_metadata("note", "ünïcode ✓");
  const std::vector<std::byte> bytes = w.to_bytes();

  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  CHECK(bytes[8] == std::byte{'{'});

  const auto f = io::safetensors_file::from_bytes(bytes, "rt.safetensors");
  CHECK(f.names() == std::vector<std::string>{"alpha.bias", "zeta.weight"});
  CHECK(f.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"note", "ünïcode ✓"}});
  CHECK(f.at("zeta.weight").dtype == st_dtype::F32);
  CHECK(f.at("zeta.weight").shape == std::vector<std::size_t>{2, 3});
  CHECK(f.at("alpha.bias").dtype == st_dtype::F64);
  CHECK(f.to_f32("zeta.weight") == a);
  CHECK(std::signbit(f.to_f32("zeta.weight")[4]));
  CHECK(f.to_f64("alpha.bias") == b);
  // Tensors are laid out in name order: alpha first.
  CHECK(f.at("alpha.bias").begin == 0);
  CHECK(f.at("zeta.weight").begin == 24);
  CHECK(f.raw("zeta.weight").size() == 24);
}

TEST_CASE("safetensors writes doubles as F32 by default", "[io][safetensors]") {
  io::safetensors_writer w;
  const std::vector<double> v = {0.1, 1e-50, 3.0};
  w.add("x", {3}, v);
  const auto f = io::safetensors_file::from_bytes(w.to_bytes());
  CHECK(f.at("x").dtype == st_dtype::F32);
  const auto got = f.to_f64("x");
  for (std::size_t i = 0; i < v.size(); ++i) CHECK(got[i] == static_cast<double>(static_cast<float>(v[i])));
}

TEST_CASE("safetensors rank-0, empty and zero-tensor files", "[io][safetensors]") {
  io::safetensors_writer w;
  w.add("scalar", {}, std::vector<float>{7.5f});
  w.add("empty_rows", {0, 3}, std::vector<float>{});
  w.add("empty_cols", {4, 0}, std::vector<double>{}, st_dtype::F64);
  w.add("last", {1}, std::vector<float>{-1.0f});
  const auto f = io::safetensors_file::from_bytes(w.to_bytes());
  CHECK(f.at("scalar").shape.empty());
  CHECK(f.at("scalar").numel() == 1);
  CHECK(f.to_f32("scalar") == std::vector<float>{7.5f});
  CHECK(f.at("empty_rows").shape == std::vector<std::size_t>{0, 3});
  CHECK(f.to_f32("empty_rows").empty());
  CHECK(f.to_f64("empty_cols").empty());
  CHECK(f.to_f32("last") == std::vector<float>{-1.0f});

  io::safetensors_writer none;
  const auto bytes = none.to_bytes();
  CHECK(bytes.size() == 16);
  const auto g = io::safetensors_file::from_bytes(bytes);
  CHECK(g.size() == 0);
  CHECK(g.metadata().empty());
}

TEST_CASE("safetensors F16, BF16, integer and bool tensors", "[io][safetensors]") {
  io::safetensors_writer w;
  const std::vector<float> h = {1.0f, -2.5f, 65504.0f, 0x1p-24f, 1e6f, 0.1f};
  w.add("h", {6}, h, st_dtype::F16);
  w.add("b", {6}, h, st_dtype::BF16);
  const std::vector<std::int64_t> i = {std::numeric_limits<std::int64_t>::min(), -1, 0, 9007199254740993LL};
  w.add("i", {2, 2}, i);
  w.add("u", {3}, std::vector<std::uint8_t>{0, 7, 255});
  w.add("m", {2}, std::vector<std::int32_t>{1, 0}, st_dtype::BOOL);
  const auto f = io::safetensors_file::from_bytes(w.to_bytes());
  const auto hf = f.to_f32("h");
  CHECK(hf[0] == 1.0f);
  CHECK(hf[1] == -2.5f);
  CHECK(hf[2] == 65504.0f);
  CHECK(hf[3] == 0x1p-24f);
  CHECK(std::isinf(hf[4]));
  CHECK(hf[5] == io::f16_bits_to_float(0x2E66));  // 0.1 rounds to 0x2E66 in binary16
  const auto bf = f.to_f32("b");
  CHECK(bf[0] == 1.0f);
  CHECK(bf[2] == 65536.0f);  // 65504 rounds to 2^16 in bfloat16
  CHECK(bf[4] == 999424.0f);
  CHECK(f.at("i").dtype == st_dtype::I64);
  CHECK(f.to_i64("i") == i);
  CHECK(f.to_i64("u") == std::vector<std::int64_t>{0, 7, 255});
  CHECK(f.to_f32("u") == std::vector<float>{0, 7, 255});
  CHECK(f.at("m").dtype == st_dtype::BOOL);
  CHECK(f.to_i64("m") == std::vector<std::int64_t>{1, 0});
  REQUIRE_THROWS_WITH(f.to_i64("h"), Contains("not an integer dtype"));
}

TEST_CASE("f16 and bf16 conversions round to nearest even and keep specials", "[io][safetensors][half]") {
  // Every finite half converts to float and back exactly; NaNs stay NaN.
  for (std::uint32_t b = 0; b < 0x10000; ++b) {
    const auto h = static_cast<std::uint16_t>(b);
    const float f = io::f16_bits_to_float(h);
    if (std::isnan(f)) {
      CHECK(std::isnan(io::f16_bits_to_float(io::float_to_f16_bits(f))));
    } else if (io::float_to_f16_bits(f) != h) {
      FAIL("half " << b << " does not round trip");
    }
  }
  CHECK(io::float_to_f16_bits(1.0f + 0x1p-11f) == 0x3C00);          // tie, to even (down)
  CHECK(io::float_to_f16_bits(1.0f + 3 * 0x1p-11f) == 0x3C02);      // tie, to even (up)
  CHECK(io::float_to_f16_bits(65519.0f) == 0x7BFF);                 // below the halfway point
  CHECK(io::float_to_f16_bits(65520.0f) == 0x7C00);                 // halfway: to infinity
  CHECK(io::float_to_f16_bits(0x1p-25f) == 0x0000);                 // tie with zero
  CHECK(io::float_to_f16_bits(0x1.8p-25f) == 0x0001);
  CHECK(io::float_to_f16_bits(-0.0f) == 0x8000);
  CHECK(io::float_to_bf16_bits(1.0f + 0x1p-8f) == 0x3F80);          // tie, to even
  CHECK(io::float_to_bf16_bits(1.0f + 3 * 0x1p-8f) == 0x3F82);
  CHECK(std::isnan(io::bf16_bits_to_float(io::float_to_bf16_bits(std::nanf("")))));
  CHECK(io::f8_e4m3_bits_to_float(0x7E) == 448.0f);
  CHECK(std::isnan(io::f8_e4m3_bits_to_float(0x7F)));
  CHECK(io::f8_e4m3_bits_to_float(0x01) == 0x1p-9f);
  CHECK(io::f8_e5m2_bits_to_float(0x7B) == 57344.0f);
}

TEST_CASE("safetensors save and load through a file", "[io][safetensors]") {
  temp_dir d;
  io::safetensors_writer w;
  w.add("base_model.model.q.lora_A.weight", cpdiff::shape{2, 4}, std::vector<float>(8, 0.25f));
  w.set_metadata("format", "pt");
  const auto p = d / "adapter_model.safetensors";
  w.save(p);
  CHECK(d.entries() == std::vector<std::string>{"adapter_model.safetensors"});
  const auto f = io::load_safetensors(p);
  CHECK(f.source() == p.string());
  CHECK(f.to_f32("base_model.model.q.lora_A.weight") == std::vector<float>(8, 0.25f));
  CHECK(f.metadata().at("format") == "pt");
  REQUIRE_THROWS_WITH(io::load_safetensors(d / "missing.safetensors"), Contains("missing.safetensors"));
}

TEST_CASE("safetensors writer rejects bad input", "[io][safetensors]") {
  io::safetensors_writer w;
  w.add("a", {2}, std::vector<float>{1, 2});
  REQUIRE_THROWS_AS(w.add("a", {1}, std::vector<float>{1}), cpdiff::config_error);
  REQUIRE_THROWS_AS(w.add("__metadata__", {1}, std::vector<float>{1}), cpdiff::config_error);
  REQUIRE_THROWS_AS(w.add("b", {2, 2}, std::vector<float>{1, 2, 3}), cpdiff::shape_error);
  REQUIRE_THROWS_AS(w.add("c", {1}, std::vector<float>{1}, st_dtype::I32), cpdiff::config_error);
  REQUIRE_THROWS_AS(w.add("d", {1}, std::vector<float>{1}, st_dtype::F8_E4M3), cpdiff::config_error);
  REQUIRE_THROWS_AS(w.add_raw("e", st_dtype::F16, {3}, std::vector<std::byte>(4)), cpdiff::shape_error);
  w.add_raw("f8", st_dtype::F8_E4M3, {2}, std::vector<std::byte>{std::byte{0x38}, std::byte{0x7E}});
  const auto f = io::safetensors_file::from_bytes(w.to_bytes());
  CHECK(f.to_f32("f8") == std::vector<float>{1.0f, 448.0f});
}

TEST_CASE("safetensors reads a file written by an independent writer", "[io][safetensors]") {
  const auto dir = cpdiff_io_test::fixtures_dir() / "safetensors";
  const auto f = io::load_safetensors(dir / "handmade.safetensors");
  const auto expected = nlohmann::json::parse(io::read_file_text(dir / "handmade.json"));
  CHECK(f.metadata() == expected["metadata"].get<std::map<std::string, std::string>>());
  REQUIRE(f.size() == expected["tensors"].size());
  for (const auto& [name, t] : expected["tensors"].items()) {
    INFO("tensor " << name);
    const auto& e = f.at(name);
    CHECK(io::st_dtype_name(e.dtype) == t["dtype"].get<std::string>());
    CHECK(e.shape == t["shape"].get<std::vector<std::size_t>>());
    const auto& vals = t["values"];
    if (!io::st_dtype_is_float(e.dtype)) {
      CHECK(f.to_i64(name) == vals.get<std::vector<std::int64_t>>());
      continue;
    }
    const auto got = e.dtype == st_dtype::F64 ? f.to_f64(name) : std::vector<double>();
    const auto got32 = f.to_f32(name);
    REQUIRE(got32.size() == vals.size());
    for (std::size_t i = 0; i < vals.size(); ++i) {
      if (vals[i].is_string()) {
        CHECK(std::isinf(got32[i]));
        CHECK((got32[i] > 0) == (vals[i].get<std::string>() == "inf"));
      } else if (e.dtype == st_dtype::F64) {
        CHECK(got[i] == vals[i].get<double>());
      } else {
        CHECK(got32[i] == static_cast<float>(vals[i].get<double>()));
        CHECK(std::signbit(got32[i]) == std::signbit(vals[i].get<double>()));
      }
    }
  }
  REQUIRE_THROWS_WITH(f.at("missing.weight"),
                      Contains("no tensor named 'missing.weight'") && Contains("'brain', 'bytes_i8'"));
}

TEST_CASE("safetensors missing-name error lists the first names", "[io][safetensors]") {
  io::safetensors_writer w;
  for (int i = 0; i < 15; ++i) w.add("t" + std::to_string(100 + i), {1}, std::vector<float>{1});
  const auto f = io::safetensors_file::from_bytes(w.to_bytes(), "many.safetensors");
  REQUIRE_THROWS_WITH(f.to_f32("nope"), Contains("many.safetensors") && Contains("15 tensor(s)") &&
                                            Contains("'t100'") && Contains("(5 more)"));
  REQUIRE_THROWS_AS(f.raw("nope"), cpdiff::io_error);
}

TEST_CASE("safetensors rejects corrupt files with a message naming the problem", "[io][safetensors][corrupt]") {
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  REQUIRE_NOTHROW(io::safetensors_file::from_bytes(make_file(ok, zeros(8))));

  SECTION("file shorter than 8 bytes") { require_rejected(cpdiff_io_test::to_bytes("\x02\0\0"), "too short"); }
  SECTION("header length over the limit") {
    auto b = make_file(ok, zeros(8));
    const std::uint64_t n = 100'000'001;
    std::memcpy(b.data(), &n, 8);
    require_rejected(b, "exceeds the limit");
  }
  SECTION("header length beyond the file") {
    auto b = make_file(ok, zeros(8));
    const std::uint64_t n = b.size();
    std::memcpy(b.data(), &n, 8);
    require_rejected(b, "runs past the end of the file");
  }
  SECTION("header not starting with '{'") {
    require_rejected("  " + ok, zeros(8), "does not start with '{'");
    require_rejected("[1, 2]", "", "does not start with '{'");
    require_rejected(make_file("", "", false), "does not start with '{'");
  }
  SECTION("header not valid JSON") {
    require_rejected(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", zeros(8), "not valid JSON");
    require_rejected(ok + "x", zeros(8), "not valid JSON");
    require_rejected("{\"\xff\xfe\":1}", "", "not valid JSON");
  }
  SECTION("entry not an object") { require_rejected(R"({"a":[1,2]})", "", "entry 'a' is not a JSON object"); }
  SECTION("missing fields") {
    require_rejected(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", zeros(8), "missing 'dtype'");
    require_rejected(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", zeros(8), "missing 'shape'");
    require_rejected(R"({"a":{"dtype":"F32","shape":[2]}})", zeros(8), "missing 'data_offsets'");
  }
  SECTION("wrong JSON types") {
    require_rejected(R"({"a":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", zeros(8), "'dtype' is not a string");
    require_rejected(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", zeros(8), "'shape' is not an array");
    require_rejected(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", zeros(8), "not a non-negative integer");
    require_rejected(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", zeros(8), "not a non-negative integer");
    require_rejected(R"({"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", zeros(8), "not a non-negative integer");
    require_rejected(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":"0,8"}})", zeros(8), "not [begin, end]");
    require_rejected(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}})", zeros(8), "not [begin, end]");
    require_rejected(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}})", zeros(8), "not [begin, end]");
  }
  SECTION("unexpected entry field") {
    require_rejected(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", zeros(8),
                     "unexpected field 'extra'");
  }
  SECTION("unknown dtype") {
    require_rejected(R"({"a":{"dtype":"F128","shape":[2],"data_offsets":[0,32]}})", zeros(32), "unknown dtype 'F128'");
    require_rejected(R"({"a":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", zeros(8), "unknown dtype 'f32'");
  }
  SECTION("begin greater than end") {
    require_rejected(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", zeros(8), "begin > end");
  }
  SECTION("size does not match shape and dtype") {
    require_rejected(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", zeros(8), "needs 12");
    require_rejected(R"({"a":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", zeros(8), "needs 16");
  }
  SECTION("hole before the first tensor or between tensors") {
    require_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", zeros(8), "hole");
    require_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                     R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                     zeros(12), "hole between tensors");
  }
  SECTION("overlapping tensors") {
    require_rejected(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                     zeros(8), "overlap");
    require_rejected(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                     zeros(8), "overlap");
  }
  SECTION("trailing bytes after the last tensor") { require_rejected(ok, zeros(12), "4 trailing byte(s)"); }
  SECTION("data section truncated") {
    require_rejected(ok, zeros(6), "runs past the end of the data section");
  }
  SECTION("duplicate names and keys") {
    require_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                     R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                     zeros(8), "duplicate tensor name 'a'");
    require_rejected(R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", zeros(8),
                     "duplicate key 'dtype'");
    require_rejected(R"({"__metadata__":{"k":"1","k":"2"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                     zeros(8), "duplicate key 'k'");
  }
  SECTION("__metadata__ not a map of strings") {
    require_rejected(R"({"__metadata__":{"epoch":3}})", "", "__metadata__ value for key 'epoch' is not a string");
    require_rejected(R"({"__metadata__":["format","pt"]})", "", "__metadata__ is not a JSON object");
  }
  SECTION("shape overflow") {
    require_rejected(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", zeros(8),
                     "overflows");
    require_rejected(R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})", zeros(8),
                     "overflows");
    require_rejected(R"({"a":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,8]}})", zeros(8),
                     "not a non-negative integer");
  }
}

TEST_CASE("safetensors accepts what the format allows", "[io][safetensors]") {
  // Unpadded header, metadata null, empty tensors sharing an offset, rank-0 tensor.
  const std::string h = R"({"__metadata__":null,"e1":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},)"
                        R"("s":{"dtype":"F64","shape":[],"data_offsets":[0,8]},)"
                        R"("e2":{"dtype":"I64","shape":[3,0],"data_offsets":[8,8]}})";
  std::string data(8, '\0');
  const double v = -6.5;
  std::memcpy(data.data(), &v, 8);
  const auto f = io::safetensors_file::from_bytes(make_file(h, data, false));
  CHECK(f.size() == 3);
  CHECK(f.metadata().empty());
  CHECK(f.to_f64("s") == std::vector<double>{-6.5});
  CHECK(f.to_i64("e2").empty());
  // An empty header object and no data.
  CHECK(io::safetensors_file::from_bytes(make_file("{}", "", false)).size() == 0);
}

TEST_CASE("safetensors truncation and random corruption only ever raise io_error", "[io][safetensors][corrupt]") {
  io::safetensors_writer w;
  w.add("a", {2, 2}, std::vector<float>{1, 2, 3, 4});
  w.add("b", {3}, std::vector<double>{1, 2, 3}, st_dtype::F64);
  w.set_metadata("k", "v");
  const auto good = w.to_bytes();
  for (std::size_t len = 0; len < good.size(); ++len) {
    const std::vector<std::byte> cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len));
    CHECK_THROWS_AS(io::safetensors_file::from_bytes(cut), cpdiff::io_error);
  }
  std::uint64_t hlen = 0;
  std::memcpy(&hlen, good.data(), 8);
  std::mt19937 rng(1234);
  int accepted = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    auto b = good;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < flips; ++k) {
      const std::size_t pos = rng() % (8 + hlen);  // corrupt the length or the header
      b[pos] = static_cast<std::byte>(rng() & 0xFF);
    }
    try {
      io::safetensors_file::from_bytes(b);
      ++accepted;  // e.g. a change inside a metadata string or a padding space
    } catch (const cpdiff::io_error&) {
    }
  }
  CHECK(accepted < 3000);
}

TEST_CASE("safetensors header: deep nesting, NUL bytes and huge values give short errors",
          "[io][safetensors][corrupt]") {
  SECTION("nesting deeper than the limit is refused while parsing, not dumped into the message") {
    const std::size_t depth = 100000;  // dump() of such a value used to overflow the stack
    const std::string deep = std::string(depth, '[') + std::string(depth, ']');
    require_rejected(R"({"a":{"dtype":"F32","shape":)" + deep + R"(,"data_offsets":[0,0]}})", "",
                     "nested deeper than 64 levels");
    require_rejected(R"({"__metadata__":)" + deep + "}", "", "nested deeper than 64 levels");
  }
  SECTION("a NUL byte inside the header") {
    const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    require_rejected(ok + std::string(1, '\0') + "garbage", zeros(8), "NUL byte");
    require_rejected(R"({"a":{"dtype":"F32","shape":[2],)" + std::string(1, '\0') + R"("data_offsets":[0,8]}})",
                     zeros(8), "NUL byte");
  }
  SECTION("long values and tokens are quoted as short excerpts") {
    auto short_error = [](const std::string& shape, const std::string& needle) {
      try {
        io::safetensors_file::from_bytes(
            make_file(R"({"a":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,0]}})", ""), "bad.safetensors");
        FAIL("accepted shape " << shape.substr(0, 40));
      } catch (const cpdiff::io_error& e) {
        CHECK_THAT(e.what(), Contains("bad.safetensors") && Contains(needle) && Contains("..."));
        CHECK(std::string(e.what()).size() < 400);
      }
    };
    short_error("[\"" + std::string(5000, 'x') + "\"]", "not a non-negative integer");
    short_error("[" + std::string(5000, '1') + ".5]", "not valid JSON");  // the parser quotes the token
  }
}

TEST_CASE("safetensors zero-element shapes are valid whatever their other dimensions", "[io][safetensors]") {
  // [2^63, 2^63, 0] holds no values: its product is 0, not an overflow.
  const std::string h = R"({"z":{"dtype":"F32","shape":[9223372036854775808,9223372036854775808,0],)"
                        R"("data_offsets":[0,0]}})";
  const auto f = io::safetensors_file::from_bytes(make_file(h, ""));
  CHECK(f.at("z").shape == std::vector<std::size_t>{std::size_t{1} << 63, std::size_t{1} << 63, 0});
  CHECK(f.to_f32("z").empty());
  // The writer checks its products too: an overflowing shape is refused instead of wrapping.
  io::safetensors_writer w;
  const std::vector<std::size_t> wraps = {std::size_t{1} << 32, std::size_t{1} << 32};
  REQUIRE_THROWS_AS(w.add("o", wraps, std::vector<float>{}), cpdiff::shape_error);
  w.add("z", std::vector<std::size_t>{std::size_t{1} << 63, std::size_t{1} << 63, 0}, std::vector<float>{});
  CHECK(io::safetensors_file::from_bytes(w.to_bytes()).to_f32("z").empty());
}

TEST_CASE("safetensors parses a header of 100k tensors (linear header parse)", "[io][safetensors]") {
  constexpr std::size_t n = 100000;
  io::safetensors_writer w;
  for (std::size_t i = 0; i < n; ++i) w.add("t" + std::to_string(i), {1}, std::vector<float>{static_cast<float>(i)});
  const auto f = io::safetensors_file::from_bytes(w.to_bytes(), "big.safetensors");
  REQUIRE(f.size() == n);
  CHECK(f.to_f32("t0") == std::vector<float>{0.0f});
  CHECK(f.to_f32("t99999") == std::vector<float>{99999.0f});
  CHECK(f.at("t5").end - f.at("t5").begin == 4);
}
