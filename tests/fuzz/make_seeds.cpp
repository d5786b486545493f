// Writes a valid seed corpus for every fuzz harness, with the library's own writers, in the split format
// each harness expects (fuzz_util.hpp):
//   make_seeds OUT      ->  OUT/safetensors/  OUT/npy/  OUT/idx/  OUT/peft/  OUT/lora_collection/
//                           OUT/checkpoint/  OUT/manifest/  OUT/generator_config/  OUT/weights/
//                           OUT/generator/  OUT/npy_xtensor/
// Built without sanitizers (tests/fuzz/run.sh); deterministic, so the corpus is the same on every run.
#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint_fixture.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/data/fashion_mnist.hpp"
#include "cpdiff/data/lora_collection.hpp"
#include "cpdiff/io/npy.hpp"
#include "cpdiff/io/peft.hpp"
#include "cpdiff/io/safetensors.hpp"
#include "cpdiff/models/style_autoencoder.hpp"
#include "cpdiff/pipeline/generator_config.hpp"
#include "cpdiff/pipeline/lora_generator.hpp"
#include "cpdiff/pipeline/text_condition.hpp"
#include "cpdiff/report/png.hpp"
#include "cpdiff/tensor/weights_file.hpp"
#include "fuzz_util.hpp"

namespace {

namespace fs = std::filesystem;
using namespace cpdiff;
using cpdiff_fuzz::read_bytes;

fs::path g_out;
std::size_t g_count = 0;

void seed(const std::string& harness, const std::string& name, std::string_view bytes) {
  const fs::path dir = g_out / harness;
  fs::create_directories(dir);
  if (!cpdiff_fuzz::write_bytes(dir / name, bytes)) {
    std::fprintf(stderr, "make_seeds: cannot write %s\n", (dir / name).c_str());
    std::exit(1);
  }
  ++g_count;
}

std::string as_string(const std::vector<std::byte>& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

std::vector<float> values(std::size_t n, std::uint64_t stream) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = philox_normal(1234, stream, i);
  return v;
}

// ---------------------------------------------------------------------------------------------------
// safetensors
// ---------------------------------------------------------------------------------------------------
void safetensors_seeds() {
  {
    io::safetensors_writer w;
    w.set_metadata("format", "pt");
    w.add("weight", std::vector<std::size_t>{2, 3}, values(6, 1));
    w.add("bias", std::vector<std::size_t>{3}, values(3, 2));
    seed("safetensors", "f32_metadata.safetensors", as_string(w.to_bytes()));
  }
  {
    // Every dtype the writer encodes, plus the 8-bit floats through add_raw, a scalar and an empty tensor.
    io::safetensors_writer w;
    const std::vector<float> f = {0.f, -1.5f, 65504.f, 1e-7f, 3.25f, -0.f};
    w.add("f16", std::vector<std::size_t>{2, 3}, f, io::st_dtype::F16);
    w.add("bf16", std::vector<std::size_t>{6}, f, io::st_dtype::BF16);
    w.add("f64", std::vector<std::size_t>{3, 2}, f, io::st_dtype::F64);
    const std::vector<std::int64_t> i = {0, -1, 127, -128, 300, 7};
    w.add("i8", std::vector<std::size_t>{6}, i, io::st_dtype::I8);
    w.add("u8", std::vector<std::size_t>{6}, i, io::st_dtype::U8);
    w.add("i16", std::vector<std::size_t>{6}, i, io::st_dtype::I16);
    w.add("u16", std::vector<std::size_t>{6}, i, io::st_dtype::U16);
    w.add("i32", std::vector<std::size_t>{6}, i, io::st_dtype::I32);
    w.add("u32", std::vector<std::size_t>{6}, i, io::st_dtype::U32);
    w.add("i64", std::vector<std::size_t>{2, 3}, i, io::st_dtype::I64);
    w.add("u64", std::vector<std::size_t>{6}, i, io::st_dtype::U64);
    w.add("bool", std::vector<std::size_t>{6}, i, io::st_dtype::BOOL);
    const std::vector<std::byte> f8 = {std::byte{0x00}, std::byte{0x7f}, std::byte{0x80}, std::byte{0x3c},
                                       std::byte{0xff}, std::byte{0x01}};
    w.add_raw("f8_e4m3", io::st_dtype::F8_E4M3, {6}, f8);
    w.add_raw("f8_e5m2", io::st_dtype::F8_E5M2, {2, 3}, f8);
    w.add("scalar", std::vector<std::size_t>{}, std::vector<double>{2.5}, io::st_dtype::F64);
    w.add("empty", std::vector<std::size_t>{0, 4}, std::vector<float>{});
    seed("safetensors", "all_dtypes.safetensors", as_string(w.to_bytes()));
  }
  {
    io::safetensors_writer w;
    seed("safetensors", "no_tensors.safetensors", as_string(w.to_bytes()));
  }
}

// ---------------------------------------------------------------------------------------------------
// npy
// ---------------------------------------------------------------------------------------------------
template <class T>
void npy_seed_span(const std::string& name, const std::vector<std::size_t>& shape, std::span<const T> data) {
  seed("npy", name, as_string(io::to_npy_bytes<T>(shape, data)));
}
template <class T>
void npy_seed(const std::string& name, const std::vector<std::size_t>& shape, const std::vector<T>& data) {
  npy_seed_span<T>(name, shape, std::span<const T>(data));
}

// A file with a hand-written header (other dtypes, byte orders and versions than save_npy writes).
void npy_raw_seed(const std::string& name, int major, const std::string& dict, std::string_view body) {
  std::string header = dict;
  const std::size_t prefix = major == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = std::string("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  const std::size_t n = header.size();
  for (std::size_t i = 0; i + 8 < prefix; ++i) out += static_cast<char>((n >> (8 * i)) & 0xFF);
  out += header;
  out.append(body);
  seed("npy", name, out);
}

void npy_seeds() {
  npy_seed<float>("f4_2x3.npy", {2, 3}, values(6, 3));
  npy_seed<double>("f8_4.npy", {4}, {0.0, -2.5, 1e300, 3.0});
  npy_seed<std::int32_t>("i4_2x2.npy", {2, 2}, {1, -2, 2147483647, -2147483647 - 1});
  npy_seed<std::int64_t>("i8_3.npy", {3}, {1, -1, std::numeric_limits<std::int64_t>::max()});
  npy_seed<std::uint8_t>("u1_2x2x2.npy", {2, 2, 2}, {0, 1, 2, 3, 250, 251, 254, 255});
  npy_seed<std::uint16_t>("u2_2.npy", {2}, {7, 65535});
  const bool flags[3] = {true, false, true};  // std::vector<bool> has no span
  npy_seed_span<bool>("b1_3.npy", {3}, std::span<const bool>(flags));
  npy_seed<float>("f4_scalar.npy", {}, {1.5f});
  npy_seed<float>("f4_empty.npy", {0, 5}, {});
  // float16, big-endian, '=' order, version 2.0 and 3.0, double quotes, a Python 2 long.
  npy_raw_seed("f2_le.npy", 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }",
               std::string("\x00\x3c\x00\xc0\xff\x7b", 6));
  npy_raw_seed("f4_be.npy", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
               std::string("\x3f\x80\x00\x00\x7f\xc0\x00\x00", 8));  // 1.0, NaN
  npy_raw_seed("i2_be.npy", 1, "{'descr': '>i2', 'fortran_order': False, 'shape': (2,), }",
               std::string("\x80\x00\x7f\xff", 4));
  npy_raw_seed("u8_native_v2.npy", 2, "{'descr': '=u8', 'fortran_order': False, 'shape': (1,), }",
               std::string("\xff\xff\xff\xff\xff\xff\xff\xff", 8));
  npy_raw_seed("f8_v3_dq.npy", 3, "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (1L, 1), }",
               std::string("\x00\x00\x00\x00\x00\x00\xf0\x7f", 8));  // +inf
  npy_raw_seed("i1_pipe.npy", 1, "{'shape': (2,), 'fortran_order': False, 'descr': '|i1'}", std::string("\x80\x7f", 2));
}

// ---------------------------------------------------------------------------------------------------
// IDX (fuzz_idx.cpp: flags byte, then the payload)
// ---------------------------------------------------------------------------------------------------
std::string be32(std::uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (24 - 8 * i)) & 0xFF);
  return s;
}
std::string idx_images_raw(std::uint32_t count, std::uint32_t rows, std::uint32_t cols) {
  std::string s = be32(data::idx_images_magic) + be32(count) + be32(rows) + be32(cols);
  for (std::size_t i = 0; i < std::size_t{count} * rows * cols; ++i) s += static_cast<char>((i * 37) & 0xFF);
  return s;
}
std::string idx_labels_raw(std::uint32_t count) {
  std::string s = be32(data::idx_labels_magic) + be32(count);
  for (std::uint32_t i = 0; i < count; ++i) s += static_cast<char>(i % 10);
  return s;
}
// gzip with zlib (as Debian's files are), one member.
std::string gzip(std::string_view raw, int level) {
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  std::string out(deflateBound(&zs, static_cast<uLong>(raw.size())) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

void idx_seeds() {
  const std::string im = idx_images_raw(3, 4, 5), lab = idx_labels_raw(6);
  const std::string fm_im = idx_images_raw(2, 28, 28), fm_lab = idx_labels_raw(2);
  // flags 4: the harness compresses the raw IDX payload.
  seed("idx", "images_raw.bin", std::string(1, '\x04') + im);
  seed("idx", "images_limits_raw.bin", std::string(1, '\x05') + fm_im);
  seed("idx", "labels_raw.bin", std::string(1, '\x06') + lab);
  seed("idx", "split_raw.bin", std::string(1, '\x07') + cpdiff_fuzz::join_prefixed(fm_im, fm_lab));
  seed("idx", "split_t10k_raw.bin", std::string(1, '\x0f') + cpdiff_fuzz::join_prefixed(fm_im, fm_lab));
  // flags without 4: real gzip files (level 9 and 1, and two concatenated members).
  seed("idx", "images_gz.bin", std::string(1, '\x00') + gzip(im, 9));
  seed("idx", "labels_gz.bin", std::string(1, '\x02') + gzip(lab, 1));
  seed("idx", "labels_two_members_gz.bin",
       std::string(1, '\x02') + gzip(lab.substr(0, 5), 6) + gzip(lab.substr(5), 6));
  seed("idx", "split_gz.bin", std::string(1, '\x03') + cpdiff_fuzz::join_prefixed(gzip(fm_im, 6), gzip(fm_lab, 6)));
}

// ---------------------------------------------------------------------------------------------------
// PEFT folders (fuzz_peft.cpp: u32 n | adapter_config.json | adapter_model.safetensors)
// ---------------------------------------------------------------------------------------------------
lora::adapter sample_adapter(std::size_t r, double alpha, bool rslora, std::uint64_t stream) {
  lora::adapter a;
  a.rank = r;
  a.alpha = alpha;
  a.use_rslora = rslora;
  a.dropout = 0.05;
  a.add("encoder.layer.0.attention.self.query", {r, 3, 4, values(r * 3, stream), values(4 * r, stream + 1)});
  a.add("encoder.layer.0.attention.self.value", {r, 3, 2, values(r * 3, stream + 2), values(2 * r, stream + 3)});
  for (const auto& [k, w] : a.modules) a.add_target(k);
  return a;
}

void peft_seed(const fs::path& tmp, const std::string& name, const lora::adapter& a, const std::string& base,
               io::st_dtype dtype) {
  const fs::path folder = tmp / name;
  lora::save_peft(folder, a, base, dtype);
  seed("peft", name + ".bin",
       cpdiff_fuzz::join_prefixed(read_bytes(folder / lora::peft_config_file), read_bytes(folder / lora::peft_weights_file)));
}

void peft_seeds(const fs::path& tmp) {
  peft_seed(tmp, "f32_r2", sample_adapter(2, 16, false, 10), "roberta-base", io::st_dtype::F32);
  peft_seed(tmp, "f16_r1_rslora", sample_adapter(1, 0.5, true, 20), "", io::st_dtype::F16);
  peft_seed(tmp, "bf16_r3", sample_adapter(3, 8, false, 30), "some/model", io::st_dtype::BF16);
  // A config with only the required field (PEFT's defaults: r 8, alpha 8) and a target regex.
  lora::adapter d = sample_adapter(8, 8, false, 40);
  const fs::path folder = tmp / "defaults";
  lora::save_peft(folder, d, "", io::st_dtype::F32);
  seed("peft", "config_defaults_regex.bin",
       cpdiff_fuzz::join_prefixed(R"({"peft_type": "LORA", "target_modules": ".*(query|value)$", "bias": "none",)"
                                  R"( "rank_pattern": {}, "alpha_pattern": {}, "use_dora": false})",
                                  read_bytes(folder / lora::peft_weights_file)));
}

// ---------------------------------------------------------------------------------------------------
// LoRA collections (fuzz_lora_collection.cpp: an archive of the folder's files)
// ---------------------------------------------------------------------------------------------------
std::string folder_archive(const fs::path& folder) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(folder)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    // index.json first, then the rest by name
    if ((a == "index.json") != (b == "index.json")) return a == "index.json";
    return a < b;
  });
  std::string out;
  for (const auto& n : names) cpdiff_fuzz::put_archive_file(out, n, read_bytes(folder / n));
  return out;
}

void collection_seeds(const fs::path& tmp) {
  {
    data::lora_collection c(data::lora_layout(sample_adapter(2, 16, false, 50)));
    const std::size_t a = c.add_condition("sentiment", {0.5f, 1.0f, -2.0f});
    const std::size_t b = c.add_condition("paraphrase", {-1.0f, 2.0f, 0.0f});
    for (std::uint64_t k = 0; k < 3; ++k) c.append(a, sample_adapter(2, 16, false, 60 + 4 * k));
    c.append(b, sample_adapter(2, 16, false, 80));
    c.save(tmp / "coll_features");
    seed("lora_collection", "features.bin", folder_archive(tmp / "coll_features"));
  }
  {
    // No features (feature_dim 0), rsLoRA, a condition without checkpoints.
    data::lora_collection c(data::lora_layout(sample_adapter(1, 2, true, 90)), 1e-6);
    const std::size_t a = c.add_condition("only");
    c.add_condition("none yet");
    c.append(a, sample_adapter(1, 2, true, 95));
    c.save(tmp / "coll_plain");
    seed("lora_collection", "plain.bin", folder_archive(tmp / "coll_plain"));
  }
}

// ---------------------------------------------------------------------------------------------------
// Trainer checkpoints (fuzz_checkpoint.cpp: the file itself)
// ---------------------------------------------------------------------------------------------------
void checkpoint_seeds(const fs::path& tmp) {
  for (std::size_t steps : {std::size_t{0}, std::size_t{5}, std::size_t{12}}) {
    cpdiff_fuzz::checkpoint_fixture fx;
    float* v = fx.model.values().data();
    for (std::size_t i = 0; i < fx.model.size(); ++i) v[i] = philox_normal(7, 0, i);
    for (std::size_t k = 0; k < steps; ++k) {
      (void)fx.loop->next_batch();
      fx.loop->zero_grad();
      float* g = fx.model.grads().data();
      for (std::size_t i = 0; i < fx.model.size(); ++i) g[i] = philox_normal(7, 1 + k, i);
      float* ge = fx.encoder.grads().data();
      for (std::size_t i = 0; i < fx.encoder.size(); ++i) ge[i] = philox_normal(7, 100 + k, i);
      const double loss = 1.0 / static_cast<double>(k + 1);
      fx.loop->check_loss(loss);
      fx.loop->finish_step(loss);
    }
    const fs::path file = tmp / ("checkpoint_" + std::to_string(steps) + ".safetensors");
    fx.loop->save(file);
    // It must resume into a fresh trainer, or the harness would start from refused inputs only.
    cpdiff_fuzz::checkpoint_fixture check;
    check.loop->resume(file);
    seed("checkpoint", "step_" + std::to_string(steps) + ".safetensors", read_bytes(file));
  }
}

// ---------------------------------------------------------------------------------------------------
// JSON inputs
// ---------------------------------------------------------------------------------------------------
void manifest_seeds() {
  seed("manifest", "text.jsonl",
       "{\"adapter\": \"runs/sst2/ckpt-12\", \"text\": \"sentiment of movie reviews\"}\n"
       "\n"
       "{\"adapter\": \"runs/sst2/ckpt-13\", \"text\": \"sentiment of movie reviews\"}\n"
       "  \t\r\n"
       "{\"text\": \"paraphrase detection\", \"adapter\": \"/abs/mrpc/ckpt-1\"}\n");
  seed("manifest", "vector.jsonl",
       "{\"adapter\": \"a/1\", \"vector\": \"feat/a.npy\"}\r\n{\"adapter\": \"b/1\", \"vector\": \"feat/b.npy\"}");
  seed("manifest", "images.jsonl",
       "{\"adapter\": \"a/1\", \"images\": [\"s/0.png\", \"s/1.png\"]}\n{\"adapter\": \"b/1\", \"images\": [\"t.png\"]}\n");
  seed("manifest", "unicode.jsonl", "{\"adapter\": \"r\\u00e9s/\\ud83d\\ude00\", \"text\": \"caf\\u00e9 \\\"q\\\"\"}\n");
}

void generator_config_seeds() {
  seed("generator_config", "defaults.json", pipeline::generator_config().to_json().dump(2));
  seed("generator_config", "quick.json", pipeline::generator_config::quick().to_json().dump());
  seed("generator_config", "subset.json",
       R"({"normalise": "per_condition", "seed": 18446744073709551615, "ema": 0, "ddim_steps": 0,)"
       R"( "autoencoder_lr": 3.5e-4, "linear_skip": false, "input_noise": 1, "latent_noise": 0.0})");
  seed("generator_config", "empty.json", "{}");
}

// ---------------------------------------------------------------------------------------------------
// Model weights files (fuzz_weights.cpp: the file itself)
// ---------------------------------------------------------------------------------------------------
// fuzz_weights.cpp's model: style_autoencoder<style_small, T> of n = 40 with the linear skip. Another seed
// than the harness's (1), so that a load changes every value.
template <class T>
void weights_seed(const fs::path& tmp, const std::string& name) {
  models::style_autoencoder<models::style_small, T> m(40, 2, {.linear_skip = true});
  const fs::path file = tmp / name;
  save_weights(file, m);
  models::style_autoencoder<models::style_small, T> check(40, 1, {.linear_skip = true});
  load_weights(file, check);  // it must load into the harness's model
  seed("weights", name, read_bytes(file));
}

void weights_seeds(const fs::path& tmp) {
  weights_seed<float>(tmp, "style_small_n40_f32.safetensors");
  weights_seed<double>(tmp, "style_small_n40_f64.safetensors");
}

// ---------------------------------------------------------------------------------------------------
// LoRA generators (fuzz_generator.cpp: an archive of the folder lora_generator::save writes)
// ---------------------------------------------------------------------------------------------------
// A tiny generator fitted with the fewest steps the settings allow (21 per stage) on a collection of two
// conditions of three checkpoints each (n = 24).
void generator_seed(const fs::path& tmp, const std::string& name, pipeline::condition_kind kind,
                    const pipeline::generator_config& c) {
  data::lora_collection coll(data::lora_layout(sample_adapter(2, 16, false, 50)));
  const std::vector<std::string> texts = {"sentiment of movie reviews", "paraphrase detection"};
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const std::vector<float> feature = kind == pipeline::condition_kind::text
                                           ? pipeline::text_condition(c.text_dim).encode(texts[i])
                                           : std::vector<float>{0.5f - float(i), 1.0f, -2.0f + 3.0f * float(i)};
    const std::string name = kind == pipeline::condition_kind::text ? texts[i] : texts[i] + ".npy";
    const std::size_t k = coll.add_condition(name, feature);
    for (std::uint64_t j = 0; j < 3; ++j) coll.append(k, sample_adapter(2, 16, false, 200 + 10 * i + 4 * j));
  }
  pipeline::peft_dataset ds{std::move(coll), kind, io::st_dtype::F16, "roberta-base", 6};
  auto g = pipeline::lora_generator<>::fit(ds, c);
  const fs::path folder = tmp / name;
  g.save(folder);
  (void)pipeline::lora_generator<>::load(folder);  // it must load, or the harness would start from refusals only
  seed("generator", name + ".bin", folder_archive(folder));
}

void generator_seeds(const fs::path& tmp) {
  pipeline::generator_config c;
  c.autoencoder_steps = 21;
  c.diffusion_steps = 21;
  c.batch = 4;
  c.ddim_steps = 4;
  c.checkpoint_every = 0;
  c.text_dim = 8;
  generator_seed(tmp, "text_pooled", pipeline::condition_kind::text, c);
  // Vector conditions, per-condition statistics, no EMA, 50 timesteps sampled by DDPM (ddim_steps 0).
  c.normalise = "per_condition";
  c.ema = 0;
  c.timesteps = 50;
  c.ddim_steps = 0;
  c.linear_skip = false;
  generator_seed(tmp, "vector_per_condition", pipeline::condition_kind::vector, c);
}

// ---------------------------------------------------------------------------------------------------
// npy through the xtensor adaptors (fuzz_npy_xtensor.cpp: the file itself)
// ---------------------------------------------------------------------------------------------------
template <class T>
void npy_xtensor_seed(const std::string& name, const std::vector<std::size_t>& shape, const std::vector<T>& data) {
  seed("npy_xtensor", name, as_string(io::to_npy_bytes<T>(shape, std::span<const T>(data))));
}

void npy_xtensor_seeds() {
  npy_xtensor_seed<float>("f4_scalar.npy", {}, {-2.5f});
  npy_xtensor_seed<double>("f8_5.npy", {5}, {0.0, -1.5, 1e300, std::numeric_limits<double>::quiet_NaN(), 3.0});
  npy_xtensor_seed<std::int32_t>("i4_2x3x2.npy", {2, 3, 2},
                                 {0, 1, -1, 7, 2147483647, -2147483647 - 1, 5, 6, 8, 9, 10, 11});
  const std::vector<float> f = values(24, 5);
  npy_xtensor_seed<float>("f4_2x3x4.npy", {2, 3, 4}, f);
  npy_xtensor_seed<float>("f4_2x0x3.npy", {2, 0, 3}, {});
}

}  // namespace

// The PNG fixtures of every colour type and depth (tests/fixtures/png, written by an encoder apart from the
// library's; run from the repository root) and a chart-like RGB image of report::encode_png.
void png_seeds() {
  const fs::path dir = "tests/fixtures/png";
  if (!fs::is_directory(dir))  // run.sh runs from the repository root: a missing folder is an error, not fewer seeds
    throw std::runtime_error("no " + dir.string() + " here (run make_seeds from the repository root)");
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".png") seed("png", e.path().filename().string(), as_string(io::read_file_bytes(e.path())));
  report::image img(6, 3, report::colours::white);
  img.set_pixel(1, 1, report::rgb{200, 10, 40});
  seed("png", "report_rgb.png", as_string(report::encode_png(img)));
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds OUT_DIR\n");
    return 2;
  }
  g_out = argv[1];
  const fs::path tmp = g_out / ".make_seeds_tmp";
  try {
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    safetensors_seeds();
    npy_seeds();
    idx_seeds();
    peft_seeds(tmp);
    collection_seeds(tmp);
    checkpoint_seeds(tmp);
    manifest_seeds();
    generator_config_seeds();
    weights_seeds(tmp);
    generator_seeds(tmp);
    npy_xtensor_seeds();
    png_seeds();
    fs::remove_all(tmp);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_seeds: %s\n", e.what());
    return 1;
  }
  std::printf("make_seeds: wrote %zu seed files under %s\n", g_count, g_out.c_str());
  return 0;
}
