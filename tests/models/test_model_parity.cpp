// Whole-model PyTorch parity: the p-diff medium autoencoder and the concat-condition U-Net against plain torch
// modules built layer for layer (tests/fixtures/make_model_fixtures.py). No weights are stored: both sides fill
// the p-th parameter tensor (registration order) with w[i] = bound_p sin(0.7 i + 1.3 p + 0.1), bound_p from
// params.json, which also lists PyTorch's names and shapes in named_parameters order: a mismatch in count,
// order, name or shape fails before any number is compared.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/io/npy.hpp"
#include "cpdiff/models/pdiff_autoencoder.hpp"
#include "cpdiff/models/pdiff_unet.hpp"

using namespace cpdiff;

namespace {

// Double precision throughout. Without FMA the worst error seen was 5e-12; built with -march=native
// (FMA contractions, a different rounding than PyTorch's) the U-Net's gradients, which pass through
// eight instance norms whose backward cancels large terms, reached 3e-9. 2e-8 bounds both with margin
// and is still far below anything a wrong layer order, padding or timestep would give (errors of 0.1-3).
constexpr double tol = 2e-8;

class model_fixture {
 public:
  explicit model_fixture(const std::string& name) : dir_(std::string(CPDIFF_FIXTURES_DIR) + "/models/" + name) {
    std::ifstream in(dir_ + "/params.json");
    if (!in) FAIL("missing fixture " << dir_ << "/params.json: run /usr/bin/python3 tests/fixtures/make_model_fixtures.py");
    json_ = nlohmann::json::parse(in);
  }
  const nlohmann::json& json() const { return json_; }

  tensor<double, cpu> array(const std::string& a) const {
    auto v = io::load_npy<double>(dir_ + "/" + a + ".npy");
    tensor<double, cpu> out(shape::from_range(v.shape.begin(), v.shape.end()));
    std::copy(v.data.begin(), v.data.end(), out.data());
    return out;
  }
  tensor<std::int64_t, cpu> indices(const std::string& a) const {
    auto v = io::load_npy<std::int64_t>(dir_ + "/" + a + ".npy");
    tensor<std::int64_t, cpu> out(shape::from_range(v.shape.begin(), v.shape.end()));
    std::copy(v.data.begin(), v.data.end(), out.data());
    return out;
  }

  // Checks the store's entries against params.json one by one, then fills them by the formula.
  template <class Store>
  void check_and_fill(Store& ps) const {
    const auto& list = json_.at("params");
    REQUIRE(ps.count() == list.size());
    std::size_t p = 0;
    ps.for_each_parameter([&](const param_entry& e, tensor_view<double> v, tensor_view<double>) {
      const auto& ref = list.at(p);
      const auto dims = ref.at("shape").get<std::vector<std::size_t>>();
      INFO("parameter " << p << ": ours " << e.name << " " << e.shape << ", PyTorch's " << ref.at("name").get<std::string>()
                        << " " << shape::from_range(dims.begin(), dims.end()));
      CHECK(e.name == ref.at("name").get<std::string>());
      REQUIRE(e.shape == shape::from_range(dims.begin(), dims.end()));
      const double bound = ref.at("bound").get<double>();
      for (std::size_t i = 0; i < v.size(); ++i) v.data()[i] = bound * std::sin(0.7 * double(i) + 1.3 * double(p) + 0.1);
      ++p;
    });
  }

 private:
  std::string dir_;
  nlohmann::json json_;
};

// max |a - b| / max |b| (norm-wise relative error), reported and checked against tol.
double compare(const std::string& what, const_view<double> got, const_view<double> want) {
  INFO(what << ": got shape " << got.shape() << ", expected " << want.shape());
  REQUIRE(got.size() == want.size());
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double d = std::abs(got.data()[i] - want.data()[i]);
    diff = std::isnan(d) ? INFINITY : std::max(diff, d);
    scale = std::max(scale, std::abs(want.data()[i]));
  }
  const double rel = diff / std::max(scale, 1e-300);
  std::cout << "  " << what << ": max |err| " << diff << ", max |ref| " << scale << ", relative " << rel << "\n";
  INFO(what << ": max abs error " << diff << ", max |ref| " << scale);
  CHECK(rel <= tol);
  return rel;
}

// Per parameter p: ||g_p|| and <g_p, u_p> / ||u_p||, u_p[i] = cos(0.3 i + p), against PyTorch's; both within
// tol ||g_p|| (Cauchy-Schwarz bounds the second by the norm of the gradient's error).
template <class Store>
void compare_grad_summary(Store& ps, const_view<double> want) {
  REQUIRE(want.shape() == shape{ps.count(), 2});
  std::size_t p = 0;
  double worst = 0;
  ps.for_each_parameter([&](const param_entry& e, tensor_view<double>, tensor_view<double> g) {
    double gg = 0, gu = 0, uu = 0;
    for (std::size_t i = 0; i < g.size(); ++i) {
      const double u = std::cos(0.3 * double(i) + double(p));
      gg += g.data()[i] * g.data()[i];
      gu += g.data()[i] * u;
      uu += u * u;
    }
    const double norm = std::sqrt(gg), proj = gu / std::sqrt(uu);
    const double ref_norm = want.data()[2 * p], ref_proj = want.data()[2 * p + 1];
    const double den = std::max(ref_norm, 1e-300);
    const double e_norm = std::abs(norm - ref_norm) / den, e_proj = std::abs(proj - ref_proj) / den;
    INFO("gradient of " << e.name << ": ||g|| " << norm << " vs " << ref_norm << ", projection " << proj << " vs "
                        << ref_proj);
    CHECK(ref_norm > 0);
    CHECK(e_norm <= tol);
    CHECK(e_proj <= tol);
    worst = std::max({worst, e_norm, e_proj});
    ++p;
  });
  std::cout << "  grad_summary (" << p << " parameters): worst relative error " << worst << "\n";
}

}  // namespace

TEST_CASE("model parity: p-diff medium autoencoder (n = 2048) matches PyTorch", "[models][parity][autoencoder]") {
  model_fixture f("pdiff_ae_medium");
  std::cout << "pdiff_ae_medium\n";
  // No noise: the training pass is then D(clamp(E(x), -1, 1)) exactly, as in the script.
  models::pdiff_autoencoder<models::pdiff_medium, double> ae(f.json().at("n").get<std::size_t>(), 7, {0.0, 0.0});
  REQUIRE(ae.latent_shape() == shape{4, 3});
  f.check_and_fill(ae.parameters());

  const auto x = f.array("x");
  {
    const auto zv = ae.encode(x.cview());
    tensor<double, cpu> z(zv.shape());  // [2, 4, 3], kept: decode reuses the model's buffers
    ops::copy(cpu{}, zv, z.view());
    compare("encode(x)", z.cview(), f.array("z").cview());
    compare("decode(encode(x))", ae.decode(z.cview()), f.array("y").cview());
  }
  compare("decode(z2)", ae.decode(f.array("z2").cview()), f.array("y2").cview());

  rng g{1, 0};
  compare("training pass, recon", ae.forward_train(x.cview(), g), f.array("recon").cview());
  ops::fill(cpu{}, ae.parameters().grads(), 0.0);
  ae.backward_train(f.array("dy").cview());
  compare_grad_summary(ae.parameters(), f.array("grad_summary").cview());
}

TEST_CASE("model parity: concat-condition p-diff U-Net (latent [4, 117], condition 512) matches PyTorch",
          "[models][parity][unet]") {
  model_fixture f("pdiff_unet_concat");
  std::cout << "pdiff_unet_concat\n";
  const auto lat = f.json().at("latent").get<std::vector<std::size_t>>();
  models::pdiff_unet<models::pdiff_unet_default, models::learned, double> net(
      {lat.at(0), lat.at(1)}, f.json().at("cond_dim").get<std::size_t>(), f.json().at("timesteps").get<std::size_t>(),
      7);
  auto& ps = net.parameters();
  f.check_and_fill(ps);

  const auto z = f.array("z"), cond = f.array("cond");
  const auto t = f.indices("t");
  REQUIRE(t.size() == 2);
  REQUIRE(t.data()[0] != t.data()[1]);  // distinct, so each table row's gradient comes from one sample
  compare("eps_hat", net.forward(z.cview(), t.cview(), cond.cview()), f.array("eps").cview());

  ops::fill(cpu{}, ps.grads(), 0.0);
  compare("d cond", net.backward(f.array("g").cview()), f.array("dcond").cview());

  // The table's gradient at the two rows used.
  const auto time_g = ps.grad(ps.find("time_encode.weight"));
  const std::size_t s = time_g.dim(1);
  tensor<double, cpu> rows({2, s});
  for (std::size_t n = 0; n < 2; ++n)
    std::copy_n(time_g.data() + std::size_t(t.data()[n]) * s, s, rows.data() + n * s);
  compare("d time_encode.weight[t]", rows.cview(), f.array("d_time_rows").cview());

  compare("d enc1.1.weight", ps.grad(ps.find("enc1.1.weight")), f.array("d_enc1_conv1_weight").cview());
  compare("d enc1.1.bias", ps.grad(ps.find("enc1.1.bias")), f.array("d_enc1_conv1_bias").cview());
  compare("d dec4.5.weight", ps.grad(ps.find("dec4.5.weight")), f.array("d_dec4_conv2_weight").cview());
  const auto dout = ps.grad(ps.find("out.weight"));
  compare("d out.weight[:8]", tensor_view<const double>(dout.data(), shape{8, dout.dim(1)}),
          f.array("d_out_weight_rows").cview());
  compare("d out.bias", ps.grad(ps.find("out.bias")), f.array("d_out_bias").cview());
  compare_grad_summary(ps, f.array("grad_summary").cview());
}
