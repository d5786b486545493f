#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/diffusion/ddim_sampler.hpp"
#include "cpdiff/models/bottom_unet.hpp"
#include "cpdiff/models/condition_encoders.hpp"
#include "cpdiff/train/conditioning.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

namespace {
struct tiny_images {
  static constexpr std::size_t in_channels = 1, c1 = 2, c2 = 3, kernel = 3;
};
struct tiny_rgb {
  static constexpr std::size_t in_channels = 2, c1 = 2, c2 = 2, kernel = 3;
};
struct tiny_unet {  // latent 6 -> bottom F = 4
  static constexpr std::array<std::size_t, 3> channels{2, 3, 2};
  static constexpr std::size_t kernel = 3, groups = 1;
};
std::vector<double> copy_of(const_view<double> v) { return {v.data(), v.data() + v.size()}; }
}  // namespace

TEST_CASE("style_image_encoder: gradcheck (images and parameters), one-channel and multi-channel images",
          "[models][condition]") {
  SECTION("[N, k, H, W]") {
    models::style_image_encoder<tiny_images, double> enc(4, 3);
    CHECK(enc.feature_dim() == 4);
    CHECK(enc.parameters().entries().front().name == "conv1.weight");
    CHECK(enc.parameters().entries().back().name == "proj.bias");
    testing::gradcheck(enc, enc.parameters(), {2, 3, 5, 6});
  }
  SECTION("[N, k, Cin, H, W]") {
    models::style_image_encoder<tiny_rgb, double> enc(3, 4);
    testing::gradcheck(enc, enc.parameters(), {2, 2, 2, 4, 4});
  }
}

TEST_CASE("style_image_encoder: the feature of k images is the mean of their single-image features",
          "[models][condition]") {
  models::style_image_encoder<tiny_images, double> enc(4, 5);
  tensor<double, cpu> imgs({1, 3, 7, 7});
  ops::fill_normal(cpu{}, imgs.view(), 0.0, 1.0, 2, 0);
  const auto together = copy_of(enc.forward(imgs.cview()));
  REQUIRE(together.size() == 4);
  std::vector<double> mean(4, 0.0);
  for (std::size_t j = 0; j < 3; ++j) {
    auto one = enc.forward(imgs.cview().reshape({3, 1, 7, 7}).slice(j, j + 1));  // [1, 1, 7, 7]
    for (std::size_t d = 0; d < 4; ++d) mean[d] += one.data()[d] / 3;
  }
  for (std::size_t d = 0; d < 4; ++d) CHECK(together[d] == Approx(mean[d]).margin(1e-12));
  // and the default (appendix-scale) projector takes 28x28 images
  models::style_image_encoder<> big(64, 1);
  tensor<float, cpu> fm({2, 4, 28, 28});
  ops::fill_uniform(cpu{}, fm.view(), 0.f, 1.f, 1, 0);
  CHECK(big.forward(fm.cview()).shape() == shape{2, 64});
}

TEST_CASE("style_image_encoder: bad input is a shape_error naming the call", "[models][condition]") {
  models::style_image_encoder<tiny_images> enc(4, 1);
  tensor<float, cpu> r3({2, 5, 5}), r5({2, 3, 2, 5, 5}), empty({0, 3, 5, 5}), good({2, 3, 5, 5}), bad_d({2, 5});
  REQUIRE_THROWS_WITH(enc.backward(bad_d.cview()), Catch::Contains("before forward"));
  REQUIRE_THROWS_WITH(enc.forward(r3.cview()),
                      Catch::Contains("style_image_encoder::forward") && Catch::Contains("[2, 5, 5]"));
  REQUIRE_THROWS_WITH(enc.forward(r5.cview()), Catch::Contains("[N, k, 1, H, W]"));
  REQUIRE_THROWS_AS(enc.forward(empty.cview()), shape_error);
  enc.forward(good.cview());
  REQUIRE_THROWS_WITH(enc.backward(bad_d.cview()), Catch::Contains("style_image_encoder::backward"));
  using enc_t = models::style_image_encoder<tiny_images>;
  REQUIRE_THROWS_AS(enc_t(0, 1), config_error);
}

TEST_CASE("vector_projector: gradcheck of the Linear and of the 2-layer MLP", "[models][condition]") {
  models::vector_projector<double> lin(5, 3, 1);
  CHECK(lin.parameters().entries().front().name == "proj.weight");
  CHECK(lin.feature_dim() == 3);
  testing::gradcheck(lin, lin.parameters(), {4, 5});
  models::vector_projector<double> mlp(5, 3, 2, 6);
  CHECK(mlp.parameters().entries().front().name == "proj.0.weight");
  CHECK(mlp.parameters().entries().back().name == "proj.2.bias");
  testing::gradcheck(mlp, mlp.parameters(), {4, 5});

  tensor<double, cpu> bad({4, 6}), bad_d({4, 2});
  REQUIRE_THROWS_WITH(mlp.forward(bad.cview()),
                      Catch::Contains("vector_projector::forward") && Catch::Contains("[4, 6]"));
  REQUIRE_THROWS_WITH(mlp.backward(bad_d.cview()), Catch::Contains("vector_projector::backward"));
  REQUIRE_THROWS_AS(models::vector_projector<double>(0, 3, 1), config_error);
}

TEST_CASE("condition_table: loads an .npy of embeddings [C, E] and looks rows up", "[models][condition]") {
  const auto dir = std::filesystem::temp_directory_path() / "cpdiff_test_condition_table";
  std::filesystem::create_directories(dir);
  std::vector<double> v(3 * 4);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.5 * double(i) - 1;
  io::save_npy(dir / "emb.npy", std::vector<std::size_t>{3, 4}, v);  // float64 on disk, float in memory
  auto table = models::condition_table<float>::load(dir / "emb.npy");
  CHECK(table.count() == 3);
  CHECK(table.dim() == 4);
  tensor<std::int64_t, cpu> ids({3});
  ids.data()[0] = 2;
  ids.data()[1] = 0;
  ids.data()[2] = 2;
  auto rows = table.lookup(ids.cview());
  REQUIRE(rows.shape() == shape{3, 4});
  const std::size_t expect_row[] = {2, 0, 2};
  for (std::size_t r = 0; r < 3; ++r)
    for (std::size_t j = 0; j < 4; ++j) CHECK(rows(r, j) == float(v[expect_row[r] * 4 + j]));
  ids.data()[1] = 3;
  REQUIRE_THROWS_WITH(table.lookup(ids.cview()), Catch::Contains("condition id 3") && Catch::Contains("position 1"));

  io::save_npy(dir / "flat.npy", std::vector<std::size_t>{12}, v);
  REQUIRE_THROWS_WITH(models::condition_table<float>::load(dir / "flat.npy"),
                      Catch::Contains("flat.npy") && Catch::Contains("[12]"));
  REQUIRE_THROWS_AS(models::condition_table<float>::load(dir / "missing.npy"), io_error);
  std::filesystem::remove_all(dir);
}

TEST_CASE("condition_embedding: rows per id, gradients scattered (repeated ids add up)", "[models][condition]") {
  models::condition_embedding<double> emb(5, 3, 7);
  auto& ps = emb.parameters();
  auto table = ps.value(ps.find("embedding.weight"));
  REQUIRE(table.shape() == shape{5, 3});
  tensor<std::int64_t, cpu> ids({3});
  ids.data()[0] = 4;
  ids.data()[1] = 1;
  ids.data()[2] = 4;
  auto y = emb.forward(ids.cview());
  REQUIRE(y.shape() == shape{3, 3});
  for (std::size_t j = 0; j < 3; ++j) {
    CHECK(y(0, j) == table(4, j));
    CHECK(y(1, j) == table(1, j));
  }
  tensor<double, cpu> d({3, 3});
  for (std::size_t i = 0; i < 9; ++i) d.data()[i] = double(i + 1);
  ops::fill(cpu{}, ps.grads(), 0.0);
  emb.backward(d.cview());
  auto g = ps.grad(ps.find("embedding.weight"));
  for (std::size_t j = 0; j < 3; ++j) {
    CHECK(g(4, j) == d.view()(0, j) + d.view()(2, j));
    CHECK(g(1, j) == d.view()(1, j));
    CHECK(g(0, j) == 0);
  }
  ids.data()[2] = 5;
  REQUIRE_THROWS_WITH(emb.forward(ids.cview()), Catch::Contains("condition id 5"));
  REQUIRE_THROWS_AS(models::condition_embedding<double>(0, 3, 1), config_error);
}

TEST_CASE("cfg_dropout: off by default; with p the dropped fraction is p and reproducible", "[models][cfg]") {
  parameter_store<double, cpu> ps;
  models::cfg_dropout<double> off(ps, "off", 2);
  CHECK(off.options().probability == 0);
  CHECK(ps.count() == 1);  // the learned null feature is registered even when p = 0 (p may be raised later)
  const std::size_t n = 20000;
  tensor<double, cpu> x({n, 2});
  ops::fill_normal(cpu{}, x.view(), 3.0, 1.0, 1, 0);
  rng g{42, 0};
  auto y0 = off.forward(x.cview(), g);
  for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(y0.data()[i] == x.data()[i]);

  models::cfg_dropout<double> drop(ps, "cfg", 2, {0.25, models::null_condition::learned});
  auto nv = ps.value(ps.find("cfg.null_feature"));
  nv.data()[0] = -7;
  nv.data()[1] = 8;
  rng g1{42, 0};
  auto y = drop.forward(x.cview(), g1);
  CHECK(g1.next_stream == 1);
  std::size_t dropped = 0;
  for (std::size_t r = 0; r < n; ++r) {
    const bool d = drop.dropped()[r] != 0;
    dropped += d;
    // dropped rows hold the null feature, kept rows the input
    REQUIRE(y(r, 0) == (d ? -7.0 : x.view()(r, 0)));
    REQUIRE(y(r, 1) == (d ? 8.0 : x.view()(r, 1)));
    // the mask is philox_uniform(seed, stream, row) < p, computed here independently
    REQUIRE(d == (philox_uniform(42, 0, r) < 0.25f));
  }
  // Binomial(20000, 0.25): mean 5000, sd 61
  CHECK(std::abs(double(dropped) - 5000.0) < 5 * 61.3);
  // same seed -> same rows; next stream -> other rows
  const auto mask1 = drop.dropped();
  rng g2{42, 0};
  drop.forward(x.cview(), g2);
  CHECK(drop.dropped() == mask1);
  drop.forward(x.cview(), g2);
  std::size_t same = 0;
  for (std::size_t r = 0; r < n; ++r) same += mask1[r] == drop.dropped()[r];
  CHECK(same < n - 100);
  // evaluation mode passes everything through and takes no stream
  drop.set_training(false);
  rng g3{42, 0};
  auto ye = drop.forward(x.cview(), g3);
  CHECK(g3.next_stream == 0);
  for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(ye.data()[i] == x.data()[i]);
}

TEST_CASE("cfg_dropout: p = 1 drops all, zero null, backward routes dropped rows into the null feature",
          "[models][cfg]") {
  parameter_store<double, cpu> ps;
  models::cfg_dropout<double> zero(ps, "z", 3, {1.0, models::null_condition::zero});
  CHECK(ps.count() == 0);
  tensor<double, cpu> x({4, 3});
  ops::fill_normal(cpu{}, x.view(), 1.0, 1.0, 1, 0);
  rng g{1, 0};
  for (double v : zero.forward(x.cview(), g).span()) CHECK(v == 0);
  for (double v : zero.null_features(2).span()) CHECK(v == 0);

  models::cfg_dropout<double> drop(ps, "c", 3, {0.5});
  const std::size_t n = 64;
  tensor<double, cpu> xs({n, 3}), dy({n, 3});
  ops::fill_normal(cpu{}, xs.view(), 0.0, 1.0, 2, 0);
  ops::fill_normal(cpu{}, dy.view(), 0.0, 1.0, 2, 1);
  drop.forward(xs.cview(), g);
  ops::fill(cpu{}, ps.grads(), 0.0);
  auto dx = drop.backward(dy.cview());
  std::vector<double> dnull(3, 0.0);
  std::size_t dropped = 0;
  for (std::size_t r = 0; r < n; ++r) {
    const bool d = drop.dropped()[r] != 0;
    dropped += d;
    for (std::size_t j = 0; j < 3; ++j) {
      CHECK(dx(r, j) == (d ? 0.0 : dy.view()(r, j)));
      if (d) dnull[j] += dy.view()(r, j);
    }
  }
  CHECK(dropped > 0);
  CHECK(dropped < n);
  auto gn = ps.grad(ps.find("c.null_feature"));
  for (std::size_t j = 0; j < 3; ++j) CHECK(gn.data()[j] == Approx(dnull[j]).margin(1e-12));

  tensor<double, cpu> bad({4, 2});
  REQUIRE_THROWS_WITH(drop.forward(bad.cview(), g),
                      Catch::Contains("cfg_dropout::forward") && Catch::Contains("[4, 2]"));
  REQUIRE_THROWS_AS(models::cfg_dropout<double>(ps, "bad", 3, {1.5}), config_error);
}

TEST_CASE("guided_eps: (1 + w) eps(c) - w eps(null), usable as a sampler's eps_model", "[models][cfg]") {
  using net_t = models::bottom_unet<tiny_unet, models::learned, double>;
  net_t net({6}, 4, 20, 3);
  tensor<double, cpu> x({2, 6}), cond({2, 4}), null1({1, 4}), null2({2, 4});
  tensor<std::int64_t, cpu> t({2});
  ops::fill_normal(cpu{}, x.view(), 0.0, 1.0, 4, 0);
  ops::fill_normal(cpu{}, cond.view(), 0.0, 1.0, 4, 1);
  ops::fill_normal(cpu{}, null1.view(), 0.0, 1.0, 4, 2);
  for (std::size_t j = 0; j < 4; ++j) null2.view()(0, j) = null2.view()(1, j) = null1.view()(0, j);
  t.data()[0] = t.data()[1] = 5;
  const auto ec = copy_of(net.forward(x.cview(), t.cview(), cond.cview()));
  const auto eu = copy_of(net.forward(x.cview(), t.cview(), null2.cview()));
  const double w = 1.5;
  models::guided_eps guided(net, cond.cview(), null1.cview(), w);  // one null row for both samples
  auto eps = guided(x.cview(), t.cview());
  REQUIRE(eps.shape() == shape{2, 6});
  for (std::size_t i = 0; i < 12; ++i) CHECK(eps.data()[i] == Approx((1 + w) * ec[i] - w * eu[i]).margin(1e-12));
  models::guided_eps plain(net, cond.cview(), null2.cview(), 0.0);
  auto e0 = plain(x.cview(), t.cview());
  for (std::size_t i = 0; i < 12; ++i) CHECK(e0.data()[i] == ec[i]);

  diffusion::ddim_sampler<double> sampler(diffusion::noise_schedule(20), {.steps = 4});
  rng g{9, 0};
  auto z0 = sampler.sample(guided, {2, 6}, g);
  REQUIRE(z0.shape() == shape{2, 6});
  for (double v : z0.span()) REQUIRE(std::isfinite(v));

  tensor<double, cpu> bad_null({3, 4});
  REQUIRE_THROWS_WITH(models::guided_eps(net, cond.cview(), bad_null.cview(), 1.0),
                      Catch::Contains("guided_eps") && Catch::Contains("[3, 4]"));
}

TEST_CASE("style_image_encoder: flat rows [N, k H W] when the image shape is given (train::condition_set's form)",
          "[models][condition]") {
  models::style_image_encoder<tiny_images, double> shaped(4, 6), flat(4, 6, {3, 5, 6});
  tensor<double, cpu> imgs({2, 3, 5, 6});
  ops::fill_normal(cpu{}, imgs.view(), 0.0, 1.0, 3, 0);
  const auto a = copy_of(shaped.forward(imgs.cview()));
  auto b = flat.forward(imgs.cview().reshape({2, 90}));
  REQUIRE(b.shape() == shape{2, 4});
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(b.data()[i] == a[i]);
  tensor<double, cpu> d({2, 4});
  ops::fill_normal(cpu{}, d.view(), 0.0, 1.0, 3, 1);
  CHECK(flat.backward(d.cview()).shape() == shape{2, 90});
  tensor<double, cpu> wrong({2, 89});
  REQUIRE_THROWS_WITH(flat.forward(wrong.cview()), Catch::Contains("[2, 89]") && Catch::Contains("[3, 5, 6]"));
  using enc_t = models::style_image_encoder<tiny_images, double>;
  REQUIRE_THROWS_AS(enc_t(4, 1, {3, 2, 5, 6}), config_error);  // two channels for a one-channel encoder
}

TEST_CASE("the encoders meet train::diffusion_trainer's condition encoder contract", "[models][condition]") {
  using style_t = models::style_image_encoder<tiny_images, float>;
  using ident_t = train::identity_condition<float, cpu>;
  static_assert(train::trainable_condition_encoder<style_t, float, cpu>);
  static_assert(train::trainable_condition_encoder<models::vector_projector<float>, float, cpu>);
  static_assert(train::trainable_condition_encoder<models::cfg_encoder<style_t>, float, cpu>);
  static_assert(train::trainable_condition_encoder<models::cfg_encoder<ident_t, float, cpu>, float, cpu>);
  // precomputed features: the wrapper owns a store for the null feature
  ident_t ident;
  models::cfg_encoder<ident_t, float, cpu> wrapped(ident, 4, {1.0}, 1);
  CHECK(wrapped.parameters().entries().at(0).name == "cfg.null_feature");
  tensor<float, cpu> rows({3, 4});
  ops::fill(cpu{}, rows.view(), 2.f);
  for (float v : wrapped.forward(rows.cview()).span()) CHECK(v == 0.f);  // p = 1: all null (zero-initialised)
  CHECK(wrapped.noise().next_stream == 1);
}

TEST_CASE("style encoder + condition dropout + bottom_unet: joint gradients reach the encoder", "[models][cfg]") {
  // The appendix's path: images -> feature -> (dropout) -> added at the U-Net's bottom. d cond from the U-Net
  // flows back through the dropout into the encoder's store and the null feature; checked by finite differences.
  // The images come as flat rows, as train::diffusion_trainer passes them, through cfg_encoder.
  models::style_image_encoder<tiny_images, double> enc(3, 1, {2, 5, 5});  // D = 3: the U-Net projects it to F = 4
  models::bottom_unet<tiny_unet, models::learned, double> net({6}, 3, 10, 2);
  models::cfg_encoder cond_enc(enc, 3, {0.5}, 5);
  auto& ps = cond_enc.parameters();
  REQUIRE(&ps == &enc.parameters());
  ps.value(ps.find("cfg.null_feature")).data()[0] = 0.3;  // a non-zero null feature
  const std::size_t n = 6;
  tensor<double, cpu> imgs({n, 50}), z({n, 6}), r({n, 6});
  tensor<std::int64_t, cpu> t({n});
  ops::fill_normal(cpu{}, imgs.view(), 0.0, 1.0, 8, 0);
  ops::fill_normal(cpu{}, z.view(), 0.0, 1.0, 8, 1);
  ops::fill_normal(cpu{}, r.view(), 0.0, 1.0, 8, 2);
  for (std::size_t i = 0; i < n; ++i) t.data()[i] = std::int64_t(i);
  auto run = [&] {
    cond_enc.noise() = rng{5, 0};  // the same rows dropped every evaluation
    return net.forward(z.cview(), t.cview(), cond_enc.forward(imgs.cview()));
  };
  run();
  std::size_t dropped = 0;
  for (auto m : cond_enc.dropout().dropped()) dropped += m;
  REQUIRE(dropped > 0);
  REQUIRE(dropped < n);
  ops::fill(cpu{}, ps.grads(), 0.0);
  cond_enc.backward(net.backward(r.cview()));
  std::vector<testing::grad_target> targets;
  ps.for_each_parameter([&](const param_entry& e, tensor_view<double> v, tensor_view<double> gr) {
    targets.push_back({e.name, v.data(), copy_of(gr)});
  });
  REQUIRE(targets.size() == 7);  // conv1, conv2, proj (w, b each) and the null feature
  testing::check_numeric([&] { return testing::dot(run(), r.cview()); }, targets);
}
