#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <type_traits>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/models/style_autoencoder.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

namespace {
struct tiny_style {
  static constexpr std::array<std::size_t, 3> channels{2, 3, 2};
  static constexpr std::size_t kernel = 3, latent = 4;
};
// An odd stride: ConvT's output padding 2, a padded length of 27 for any n <= 27.
struct tiny_stride3 {
  static constexpr std::array<std::size_t, 3> channels{2, 3, 2};
  static constexpr std::size_t kernel = 3, latent = 4, stride = 3;
};

// Parameters of the stack by hand: conv (w + b) and BatchNorm (weight, bias, running mean, running var) per level,
// the two Linears, and the output conv.
template <class C>
std::size_t expected_parameter_count(std::size_t n) {
  const std::size_t d = C::channels.size(), k = C::kernel;
  std::size_t unit = 1;
  // the config's stride (2 when it has none: the presets' static_asserts check the model reads it)
  for (std::size_t i = 0; i < d; ++i) unit *= models::style_autoencoder<C>::stride;
  const std::size_t m = (n + unit - 1) / unit, f = C::channels[d - 1] * m;
  std::size_t total = 0, in = 1;
  for (std::size_t c : C::channels) {  // encoder
    total += c * in * k + c + 4 * c;
    in = c;
  }
  total += (f * C::latent + C::latent) + (C::latent * f + f);  // the two Linears
  for (std::size_t j = 0; j < d; ++j) {                         // decoder: c_{d-1-j} -> c_{d-2-j} (c_0 on the last)
    const std::size_t ci = C::channels[d - 1 - j], co = j + 1 == d ? C::channels[0] : C::channels[d - 2 - j];
    total += ci * co * k + co + 4 * co;
  }
  return total + C::channels[0] * k + 1;  // output conv c_0 -> 1
}
}  // namespace

TEST_CASE("style_autoencoder: the paper's preset by shape arithmetic (n = 516,096 -> bottom [64, 504])",
          "[models][style_ae]") {
  using paper = models::style_autoencoder<models::style_paper>;
  static_assert(sizeof(paper) > 0);  // the preset's types instantiate
  static_assert(paper::depth == 10 && paper::latent_size == 256 && paper::fold_unit == 1024);
  CHECK(paper::padded_size(516096) == 516096);  // 504 * 1024: no padding needed
  CHECK(paper::bottom_length(516096) == 504);
  CHECK(paper::bottom_size(516096) == 64 * 504);
  CHECK(paper::padded_size(516097) == 517120);  // one more rounds up a whole unit
  CHECK(paper::padded_size(1) == 1024);
  // About 45 M parameters (the builder's count, not the model's: building it would take ~360 MB).
  CHECK(expected_parameter_count<models::style_paper>(516096) == 45087505);
}

TEST_CASE("style_autoencoder: small preset shapes and parameter count", "[models][style_ae]") {
  models::style_autoencoder<models::style_small> ae(1000, 1);
  CHECK(ae.padded_size() == 1008);  // ceil(1000 / 16) * 16
  CHECK(ae.bottom_shape() == shape{4, 63});
  CHECK(ae.latent_shape() == shape{16});
  CHECK(ae.parameters().size() == expected_parameter_count<models::style_small>(1000));
  CHECK(ae.parameters().entries().front().name == "encoder.0.0.weight");
  CHECK(ae.parameters().entries().back().name == "decoder.4.bias");
  tensor<float, cpu> x({3, 1000});
  ops::fill_normal(cpu{}, x.view(), 0.f, 1.f, 3, 0);
  auto z = ae.encode(x.cview());
  REQUIRE(z.shape() == shape{3, 16});
  auto y = ae.decode(z);
  REQUIRE(y.shape() == shape{3, 1000});
  for (float v : y.span()) REQUIRE(std::isfinite(v));
  rng g{5, 0};
  CHECK(ae.forward_train(x.cview(), g).shape() == shape{3, 1000});
}

namespace {
template <class Cfg>
void train_gradcheck(typename models::style_autoencoder<Cfg, double>::options o, std::size_t n, std::size_t batch) {
  models::style_autoencoder<Cfg, double> ae(n, 5, o);
  auto& ps = ae.parameters();
  tensor<double, cpu> x({batch, n});
  ops::fill_normal(cpu{}, x.view(), 0.0, 1.0, 9, 0);
  const rng start{77, 0};
  rng g = start;
  auto y = ae.forward_train(x.cview(), g);
  REQUIRE(y.shape() == shape{batch, n});
  tensor<double, cpu> r(y.shape());
  ops::fill_normal(cpu{}, r.view(), 0.0, 1.0, 10, 0);
  ops::fill(cpu{}, ps.grads(), 0.0);
  ae.backward_train(r.cview());
  std::vector<testing::grad_target> targets;
  ps.for_each_parameter([&](const param_entry& e, tensor_view<double> v, tensor_view<double> gr) {
    if (e.trainable) targets.push_back({e.name, v.data(), std::vector<double>(gr.data(), gr.data() + gr.size())});
  });
  // per level: conv w, b and BN weight, bias; x levels x 2 stacks; 2 Linears (w, b); output conv (w, b);
  // the skip Linear (w, b) when on
  REQUIRE(targets.size() == 4 * Cfg::channels.size() * 2 + 4 + 2 + (o.linear_skip ? 2 : 0));
  testing::check_numeric(
      [&] {
        rng gg = start;  // the same noise every evaluation
        return testing::dot(ae.forward_train(x.cview(), gg), r.cview());
      },
      targets);
}
}  // namespace

TEST_CASE("style_autoencoder: gradcheck of the training pass (both noises, batch statistics)", "[models][style_ae]") {
  train_gradcheck<tiny_style>({0.01, 0.1, false}, 13, 3);  // Lp 16, bottom [2, 2]
}

TEST_CASE("style_autoencoder: gradcheck with the optional latent clamp", "[models][style_ae]") {
  train_gradcheck<tiny_style>({0.01, 0.3, true}, 9, 2);  // Lp 16 again, n not a divisor
}

TEST_CASE("style_autoencoder: gradcheck with the Tanh-bounded latent and the clamp", "[models][style_ae]") {
  train_gradcheck<tiny_style>({0.01, 0.2, true, true}, 13, 3);
}

TEST_CASE("style_autoencoder: gradcheck with the linear skip in the decoder", "[models][style_ae]") {
  train_gradcheck<tiny_style>({.input_noise = 0.01, .latent_noise = 0.2, .clamp_latent = true, .tanh_latent = true,
                               .linear_skip = true},
                              13, 3);
}

TEST_CASE("style_autoencoder: gradcheck of a stride-3 stack (ConvT output padding 2), linear skip on",
          "[models][style_ae]") {
  using ae_t = models::style_autoencoder<tiny_stride3, double>;
  static_assert(ae_t::stride == 3 && ae_t::fold_unit == 27);
  train_gradcheck<tiny_stride3>({.input_noise = 0.01, .latent_noise = 0.2, .clamp_latent = true, .tanh_latent = true,
                                 .linear_skip = true},
                                13, 3);  // Lp 27, bottom [2, 1]
}

TEST_CASE("style_autoencoder: the ViT preset (stride 4): n = 24,576 -> bottom [8, 96], shapes and parameter count",
          "[models][style_ae]") {
  using ae_t = models::style_autoencoder<models::style_vit>;
  static_assert(ae_t::stride == 4 && ae_t::fold_unit == 256);
  CHECK(ae_t::padded_size(24576) == 24576);  // 96 * 4^4
  CHECK(ae_t::padded_size(24577) == 24832);
  ae_t ae(24576, 1, {.linear_skip = true});
  CHECK(ae.bottom_shape() == shape{8, 96});
  CHECK(ae.parameters().size() == expected_parameter_count<models::style_vit>(24576) + 64 * 24576 + 24576);
  CHECK(ae.describe().find("\"stride\": 4") != std::string::npos);
  CHECK(models::style_autoencoder<models::style_small>(40, 1).describe().find("stride") == std::string::npos);
  tensor<float, cpu> x({2, 24576});
  ops::fill_normal(cpu{}, x.view(), 0.f, 1.f, 3, 0);
  const auto z = ae.encode(x.cview());
  REQUIRE(z.shape() == shape{2, 64});
  const auto y = ae.decode(z);
  REQUIRE(y.shape() == shape{2, 24576});
  for (float v : y.span()) REQUIRE(std::isfinite(v));
}

TEST_CASE("style_autoencoder: linear_skip adds W z + c to the conv path's output, and is off by default",
          "[models][style_ae]") {
  using ae_t = models::style_autoencoder<tiny_style, double>;
  CHECK_FALSE(ae_t::options{}.linear_skip);
  // same seed: the same conv weights (skip drawn last); the decoder reads z itself (noise_mean_at_eval off;
  // on, it reads (1 - b) z: the next test)
  ae_t plain(13, 3, {.noise_mean_at_eval = false}), skip(13, 3, {.linear_skip = true, .noise_mean_at_eval = false});
  CHECK(skip.parameters().size() == plain.parameters().size() + 4 * 13 + 13);
  const auto& ps = skip.parameters();
  const auto w = ps.value(ps.find("decoder_skip.weight")), c = ps.value(ps.find("decoder_skip.bias"));
  REQUIRE(w.shape() == shape{13, 4});
  tensor<double, cpu> z({2, 4});
  ops::fill_normal(cpu{}, z.view(), 0.0, 1.0, 8, 0);
  const auto yp = plain.decode(z.cview());
  const std::vector<double> base(yp.data(), yp.data() + yp.size());
  const auto ys = skip.decode(z.cview());
  double moved = 0;
  for (std::size_t r = 0; r < 2; ++r)
    for (std::size_t j = 0; j < 13; ++j) {
      double wz = c.data()[j];
      for (std::size_t k = 0; k < 4; ++k) wz += w.data()[j * 4 + k] * z.data()[r * 4 + k];
      CHECK(ys.data()[r * 13 + j] == Approx(base[r * 13 + j] + wz).margin(1e-12));
      moved += std::abs(wz);
    }
  CHECK(moved > 1e-3);  // the skip term is not zero, so the check above can fail
}

TEST_CASE("style_autoencoder: encode / decode read the noise's mean, (1-a) x and (1-b) z, unless noise_mean_at_eval is off",
          "[models][style_ae]") {
  using ae_t = models::style_autoencoder<tiny_style, double>;
  CHECK(ae_t::options{}.noise_mean_at_eval);
  const ae_t::options noisy{.input_noise = 0.1, .latent_noise = 0.2, .linear_skip = true};
  ae_t on(13, 3, noisy), off(13, 3, [&] {  // same seed: the same weights
    auto o = noisy;
    o.noise_mean_at_eval = false;
    return o;
  }());
  tensor<double, cpu> x({2, 13}), x9({2, 13}), z({2, 4}), z8({2, 4});
  ops::fill_normal(cpu{}, x.view(), 0.0, 1.0, 4, 0);
  ops::fill_normal(cpu{}, z.view(), 0.0, 0.5, 5, 0);
  for (std::size_t i = 0; i < x.size(); ++i) x9.data()[i] = 0.9 * x.data()[i];
  for (std::size_t i = 0; i < z.size(); ++i) z8.data()[i] = 0.8 * z.data()[i];
  const auto e_on = on.encode(x.cview());
  const std::vector<double> zon(e_on.data(), e_on.data() + e_on.size());
  const auto e_off = off.encode(x9.cview());
  for (std::size_t i = 0; i < zon.size(); ++i) CHECK(zon[i] == Approx(e_off.data()[i]).margin(1e-12));
  const auto d_on = on.decode(z.cview());
  const std::vector<double> yon(d_on.data(), d_on.data() + d_on.size());
  const auto d_off = off.decode(z8.cview());
  for (std::size_t i = 0; i < yon.size(); ++i) CHECK(yon[i] == Approx(d_off.data()[i]).margin(1e-12));
  const auto d_raw = off.decode(z.cview());  // z itself: a different output, so the checks above can fail
  double moved = 0;
  for (std::size_t i = 0; i < yon.size(); ++i) moved += std::abs(yon[i] - d_raw.data()[i]);
  CHECK(moved > 1e-3);
}

TEST_CASE("style_autoencoder: tanh_latent bounds encode() to (-1, 1) and is off by default", "[models][style_ae]") {
  using ae_t = models::style_autoencoder<tiny_style, double>;
  CHECK_FALSE(ae_t::options{}.tanh_latent);
  ae_t linear(16, 3, {0.0, 0.1, false, false}), bounded(16, 3, {0.0, 0.1, true, true});  // same seed: same weights
  tensor<double, cpu> x({4, 16});
  ops::fill_normal(cpu{}, x.view(), 0.0, 30.0, 2, 0);  // large inputs: the Linear's output leaves [-1, 1]
  const auto zl = linear.encode(x.cview());
  const std::vector<double> a(zl.data(), zl.data() + zl.size());
  const auto zb = bounded.encode(x.cview());
  double peak = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(zb.data()[i] == Approx(std::tanh(a[i])).margin(1e-12));
    peak = std::max(peak, std::abs(a[i]));
  }
  CHECK(peak > 1.0);  // the check above would not see a missing Tanh otherwise
}

TEST_CASE("style_autoencoder: the clamp is off by default and bounds the noisy latent when on", "[models][style_ae]") {
  using ae_t = models::style_autoencoder<tiny_style, double>;
  CHECK_FALSE(ae_t::options{}.clamp_latent);
  CHECK(ae_t::options{}.input_noise == 0.001);
  CHECK(ae_t::options{}.latent_noise == 0.1);
  // With b = 1 the decoder sees pure noise eps ~ N(0, 1) (the same draws in both models): the two
  // reconstructions differ exactly when the clamp cuts some |eps| > 1, which some of 2 x 4 normals exceed.
  ae_t off(16, 3, {0.0, 1.0, false}), on(16, 3, {0.0, 1.0, true});
  tensor<double, cpu> x({2, 16});
  ops::fill_normal(cpu{}, x.view(), 0.0, 1.0, 1, 0);
  rng g1{4, 0}, g2{4, 0};
  auto y_off = off.forward_train(x.cview(), g1);
  auto y_on = on.forward_train(x.cview(), g2);
  double diff = 0;
  for (std::size_t i = 0; i < y_on.size(); ++i) diff += std::abs(y_on.data()[i] - y_off.data()[i]);
  CHECK(diff > 1e-6);
}

TEST_CASE("style_autoencoder: encode uses running statistics, so a latent depends only on its own sample",
          "[models][style_ae]") {
  models::style_autoencoder<tiny_style, double> ae(13, 2);
  tensor<double, cpu> x({4, 13});
  ops::fill_normal(cpu{}, x.view(), 0.5, 2.0, 6, 0);
  rng g{1, 0};
  for (int i = 0; i < 3; ++i) ae.forward_train(x.cview(), g);  // moves the running statistics off (0, 1)
  auto& ps = ae.parameters();
  const auto rm = ps.value(ps.find("encoder.0.1.running_mean"));
  CHECK(std::abs(rm.data()[0]) > 1e-3);
  const std::vector<double> rm_before(rm.data(), rm.data() + rm.size());

  const auto za = ae.encode(x.cview());
  const std::vector<double> z_all(za.data(), za.data() + za.size());
  for (std::size_t i = 0; i < 4; ++i) {
    auto zi = ae.encode(x.cview().slice(i, i + 1));
    for (std::size_t j = 0; j < 4; ++j) CHECK(zi.data()[j] == Approx(z_all[i * 4 + j]).epsilon(1e-12));
  }
  // encode / decode leave the running statistics alone
  ae.decode(ae.encode(x.cview()));
  for (std::size_t c = 0; c < rm.size(); ++c) CHECK(rm.data()[c] == rm_before[c]);
}

TEST_CASE("style_autoencoder: the training noise is reproducible from the rng", "[models][style_ae]") {
  models::style_autoencoder<tiny_style, double> ae(13, 2);
  tensor<double, cpu> x({2, 13});
  ops::fill_normal(cpu{}, x.view(), 0.0, 1.0, 6, 0);
  rng a2{9, 0}, b2{9, 0}, c{10, 0};
  auto y1 = ae.forward_train(x.cview(), a2);
  const std::vector<double> v1(y1.span().begin(), y1.span().end());
  auto y2 = ae.forward_train(x.cview(), b2);
  for (std::size_t i = 0; i < v1.size(); ++i) CHECK(y2.data()[i] == v1[i]);
  auto y3 = ae.forward_train(x.cview(), c);
  double diff = 0;
  for (std::size_t i = 0; i < v1.size(); ++i) diff += std::abs(y3.data()[i] - v1[i]);
  CHECK(diff > 1e-6);
}

TEST_CASE("style_autoencoder: bad input is a shape_error / config_error naming the call", "[models][style_ae]") {
  models::style_autoencoder<models::style_small> ae(100, 1);
  tensor<float, cpu> x({2, 99}), x1({2, 100, 1}), empty({0, 100});
  REQUIRE_THROWS_WITH(ae.encode(x.cview()), Catch::Contains("style_autoencoder::encode") && Catch::Contains("[2, 99]"));
  REQUIRE_THROWS_AS(ae.encode(x1.cview()), shape_error);
  REQUIRE_THROWS_AS(ae.encode(empty.cview()), shape_error);
  rng g{1, 0};
  REQUIRE_THROWS_WITH(ae.forward_train(x.cview(), g), Catch::Contains("style_autoencoder::forward_train"));
  tensor<float, cpu> z({2, 15});
  REQUIRE_THROWS_WITH(ae.decode(z.cview()), Catch::Contains("style_autoencoder::decode") && Catch::Contains("[2, 15]"));
  tensor<float, cpu> good({2, 100}), bad_d({2, 99});
  ae.forward_train(good.cview(), g);
  REQUIRE_THROWS_WITH(ae.backward_train(bad_d.cview()), Catch::Contains("backward_train"));
  using ae_t = models::style_autoencoder<models::style_small>;
  REQUIRE_THROWS_AS(ae_t(0, 1), config_error);
  REQUIRE_THROWS_AS(ae_t(10, 1, {0.001, 1.5, false}), config_error);
}

// PyTorch reference: tests/fixtures/make_appendix_fixtures.py (case style_ae_tiny, next to the layer fixtures).
TEST_CASE("style_autoencoder: PyTorch parity (names, eval encode / decode, training pass, gradients, running stats)",
          "[models][style_ae][parity]") {
  testing::fixture f("../appendix/style_ae_tiny");
  models::style_autoencoder<tiny_style, double> ae(13, 1, {0.0, 0.0, false});  // no noise: comparable to torch
  auto& ps = ae.parameters();
  const auto& keys = f.json().at("state");
  REQUIRE(keys.size() == ps.count());
  for (std::size_t i = 0; i < ps.count(); ++i) {
    const auto& e = ps.entries()[i];
    REQUIRE(e.name == keys[i].get<std::string>());  // the state_dict's names, in its order
    f.load_into("state__" + e.name, ps.value(param_id{i}));
  }
  const auto x = f.tensor("x");
  auto z = ae.encode(x.cview());
  testing::require_close(z, f.tensor("z").cview(), 1e-10, "z = encode(x)");
  testing::require_close(ae.decode(z), f.tensor("y").cview(), 1e-10, "decode(z)");
  rng g{1, 0};
  testing::require_close(ae.forward_train(x.cview(), g), f.tensor("recon").cview(), 1e-10, "training pass");
  ops::fill(cpu{}, ps.grads(), 0.0);
  ae.backward_train(f.tensor("dy").cview());
  for (std::size_t i = 0; i < ps.count(); ++i) {
    const auto& e = ps.entries()[i];
    if (e.trainable)
      testing::require_close(ps.grad(param_id{i}), f.tensor("grad__" + e.name).cview(), 1e-10, "d " + e.name);
    else  // running statistics after one training pass
      testing::require_close(ps.value(param_id{i}), f.tensor("after__" + e.name).cview(), 1e-10, e.name);
  }
}
