// The layer contract (nn/layer.hpp) as behaviour: backward before forward says so, every layer takes its
// backend from the store, the sizes sequential checks at compile time, and gradcheck's pre-filled
// gradients (backward adds, frozen entries untouched).
#include "cpdiff/cpdiff.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

namespace {
template <class L>
void require_before_forward(L& l, shape dy_shape, const char* where) {
  tensor<float, cpu> dy(dy_shape);
  ops::fill(cpu{}, dy.view(), 1.f);
  REQUIRE_THROWS_AS(l.backward(dy.cview()), shape_error);
  REQUIRE_THROWS_WITH(l.backward(dy.cview()), Catch::Contains(where) && Catch::Contains("called before forward"));
}
}  // namespace

TEST_CASE("layer contract: backward before forward says so, for every layer", "[nn][contract]") {
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::linear<3, 4> fc(ps, "fc", g);
  require_before_forward(fc, {2, 4}, "nn::linear::backward");
  nn::conv1d<2, 3, 3> conv(ps, "conv", g);
  require_before_forward(conv, {1, 3, 5}, "nn::conv1d::backward");
  nn::conv_transpose1d<2, 3, 3> convt(ps, "convt", g);
  require_before_forward(convt, {1, 3, 5}, "nn::conv_transpose1d::backward");
  nn::batch_norm1d<3> bn(ps, "bn", g);
  require_before_forward(bn, {2, 3}, "nn::batch_norm1d::backward");
  nn::group_norm<1, 3> gn(ps, "gn", g);
  require_before_forward(gn, {2, 3, 4}, "nn::group_norm::backward");
  nn::layer_norm<3> ln(ps, "ln", g);
  require_before_forward(ln, {2, 3}, "nn::layer_norm::backward");
  nn::instance_norm1d<3> in(ps);
  require_before_forward(in, {2, 3, 4}, "nn::instance_norm1d::backward");
  nn::relu<> relu(ps);
  require_before_forward(relu, {2, 3}, "nn::relu::backward");
  nn::dropout<> drop(0.1, g);
  require_before_forward(drop, {2, 3}, "nn::dropout::backward");
  nn::flatten<> flat(ps);
  require_before_forward(flat, {2, 3}, "nn::flatten::backward");
  nn::sequential<nn::linear<3, 4>, nn::relu<>> seq(ps, "seq", g);
  require_before_forward(seq, {2, 4}, "nn::relu::backward");
}

TEST_CASE("layer contract: parameter-free layers keep the store's backend value", "[nn][contract]") {
  parameter_store<float, cpu> ps;
  nn::relu<> r(ps);
  nn::global_avg_pool<> pool(ps);
  nn::instance_norm1d<4> norm(ps, 1e-3);
  CHECK(norm.eps() == Approx(1e-3));
  STATIC_REQUIRE(stateless_backend<cpu>);
  STATIC_REQUIRE(layer<nn::sequential<nn::linear<3, 4>, nn::relu<>, nn::linear<4, 2>>>);
}

TEST_CASE("layer contract: sequential's static sizes pass through element-wise layers and nest", "[nn][contract]") {
  using inner = nn::sequential<nn::conv1d<1, 4, 3>, nn::leaky_relu<>, nn::instance_norm1d<4>>;
  using sizes = nn::layer_sizes<inner>;
  STATIC_REQUIRE(sizes::in == 1);
  STATIC_REQUIRE(sizes::out == 4);
  STATIC_REQUIRE(!sizes::passes_through);
  STATIC_REQUIRE(nn::layer_sizes<nn::relu<>>::passes_through);
  // conv 1 -> 4, norm over 4 channels, then a flatten: the linear after it is not compared with 4.
  STATIC_REQUIRE(nn::detail::size_mismatch<inner, nn::flatten<>, nn::linear<12, 2>>().second == 0);
  STATIC_REQUIRE(nn::detail::size_mismatch<inner, nn::conv1d<5, 2, 1>>().second == 1);
  STATIC_REQUIRE(nn::detail::size_mismatch<nn::linear<3, 4>, nn::relu<>, nn::linear<5, 2>>().second == 2);
}

namespace {
// y = w * x, with a backward that can break the contract on request.
struct scale_layer {
  using value_type = double;
  using backend_type = cpu;
  parameter_store<double, cpu>* ps;
  param_id w, frozen;
  bool overwrite = false, touch_frozen = false;
  tensor<double, cpu> y, dx;
  const_view<double> x_;
  explicit scale_layer(parameter_store<double, cpu>& s) : ps(&s) {
    w = s.add("w", {1});
    frozen = s.add("frozen", {1}, false);
    s.value(w).data()[0] = 1.5;
  }
  const_view<double> forward(const_view<double> x) {
    x_ = x;
    y.resize(x.shape());
    for (std::size_t i = 0; i < x.size(); ++i) y.data()[i] = ps->value(w).data()[0] * x.data()[i];
    return y.cview();
  }
  const_view<double> backward(const_view<double> dy) {
    double gw = 0;
    for (std::size_t i = 0; i < dy.size(); ++i) gw += dy.data()[i] * x_.data()[i];
    double& g = ps->grad(w).data()[0];
    g = overwrite ? gw : g + gw;
    if (touch_frozen) ps->grad(frozen).data()[0] += 1.0;
    dx.resize(dy.shape());
    for (std::size_t i = 0; i < dy.size(); ++i) dx.data()[i] = ps->value(w).data()[0] * dy.data()[i];
    return dx.cview();
  }
};
static_assert(layer<scale_layer>);
}  // namespace

TEST_CASE("gradcheck passes a layer that keeps the contract", "[nn][contract][gradcheck]") {
  parameter_store<double, cpu> ps;
  scale_layer l(ps);
  testing::gradcheck(l, ps, {3});
}

// [!shouldfail]: Catch counts these as passed only when a check inside them fails, i.e. when gradcheck
// catches the broken contract.
TEST_CASE("gradcheck catches a backward that overwrites the gradient instead of adding", "[nn][contract][gradcheck][!shouldfail]") {
  parameter_store<double, cpu> ps;
  scale_layer l(ps);
  l.overwrite = true;
  testing::gradcheck(l, ps, {3});
}

TEST_CASE("gradcheck catches a backward that writes a frozen entry's gradient", "[nn][contract][gradcheck][!shouldfail]") {
  parameter_store<double, cpu> ps;
  scale_layer l(ps);
  l.touch_frozen = true;
  testing::gradcheck(l, ps, {3});
}

TEST_CASE("decode checks its latent before it reshapes, naming the model's shape", "[nn][contract][models]") {
  models::pdiff_autoencoder<models::pdiff_small> ae(300, 1);
  const shape ls = ae.latent_shape();
  tensor<float, cpu> z({2, ls[0], ls[1] + 1});
  ops::fill(cpu{}, z.view(), 0.f);
  REQUIRE_THROWS_AS(ae.decode(z.cview()), shape_error);
  REQUIRE_THROWS_WITH(ae.decode(z.cview()), Catch::Contains("models::pdiff_autoencoder::decode") &&
                                                Catch::Contains("n = 300"));
}

TEST_CASE("errors inside a model name the member, as its parameters are named", "[nn][contract][models]") {
  parameter_store<float, cpu> ps;
  rng g{2};
  tensor<float, cpu> x({2, 5}), dy({2, 3});
  SECTION("sequential names the index of the member that threw") {
    nn::sequential<nn::linear<4, 8>, nn::relu<>, nn::linear<8, 3>> mlp(ps, "mlp", g);
    REQUIRE_THROWS_WITH(mlp.forward(x.cview()), Catch::StartsWith("cpdiff: mlp.0: nn::linear::forward"));
    REQUIRE_THROWS_WITH(mlp.backward(dy.cview()), Catch::StartsWith("cpdiff: mlp.2: nn::linear::backward") &&
                                                      Catch::Contains("called before forward"));
    try {
      mlp.backward(dy.cview());
    } catch (const shape_error& e) {  // the type is kept: the name is added to the error as it passes
      CHECK(e.member() == "mlp.2");
    }
  }
  SECTION("nested sequentials keep the innermost, whole name") {
    nn::sequential<nn::sequential<nn::linear<4, 8>, nn::relu<>>, nn::linear<8, 3>> enc(ps, "encoder", g);
    REQUIRE_THROWS_WITH(enc.forward(x.cview()), Catch::StartsWith("cpdiff: encoder.0.0: nn::linear::forward"));
  }
  SECTION("a model's own members: lora_mlp's fc2 before forward") {
    models::lora_mlp<2, std::ratio<4>, 16> net(3);
    tensor<float, cpu> dlogits({2, 10});
    REQUIRE_THROWS_WITH(net.backward(dlogits.cview()), Catch::StartsWith("cpdiff: fc2: "));
  }
  SECTION("an error raised outside any member is unchanged") {
    nn::linear<4, 8> fc(ps, "fc", g);
    REQUIRE_THROWS_WITH(fc.forward(x.cview()), Catch::StartsWith("cpdiff: nn::linear::forward"));
  }
}
