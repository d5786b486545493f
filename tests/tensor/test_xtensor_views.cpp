// tensor/xtensor_views.hpp: zero-copy xtensor adaptors of host views and parameters, and back.
#include <xtensor/xarray.hpp>
#include <xtensor/xmath.hpp>

#include "cpdiff/cpdiff.hpp"
#include "cpdiff/tensor/xtensor_views.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

TEST_CASE("xtensor views: a tensor seen as xtensor shares its memory both ways", "[tensor][xtensor]") {
  tensor<float, cpu> t({2, 3});
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = float(i);
  auto x = as_xtensor(t.view());
  REQUIRE(x.shape().size() == 2);
  CHECK(x.shape()[0] == 2);
  CHECK(x.shape()[1] == 3);
  CHECK(x(1, 2) == 5.f);
  x(0, 1) = 42.f;  // writes land in the tensor
  CHECK(t.data()[1] == 42.f);
  CHECK(xt::sum(x)() == Approx(0 + 42 + 2 + 3 + 4 + 5));
  const auto cx = as_xtensor(t.cview());
  CHECK(cx(0, 1) == 42.f);
}

TEST_CASE("xtensor views: a parameter edited in place through xtensor", "[tensor][xtensor]") {
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::linear<3, 2> fc(ps, "fc", g);
  auto w = as_xtensor(ps.value(ps.find("fc.weight")));  // [2, 3]
  w = xt::zeros<float>({2, 3});
  for (std::size_t i = 0; i < 6; ++i) CHECK(ps.value(ps.find("fc.weight")).data()[i] == 0.f);
}

TEST_CASE("xtensor views: an xarray seen as a cpdiff view feeds a layer without a copy", "[tensor][xtensor]") {
  xt::xarray<float> a = xt::ones<float>({4, 3});
  const tensor_view<float> v = as_view(a);
  CHECK(v.data() == a.data());
  CHECK(v.shape() == shape{4, 3});
  parameter_store<float, cpu> ps;
  rng g{2};
  nn::linear<3, 2> fc(ps, "fc", g);
  const auto y = fc.forward(v);
  CHECK(y.shape() == shape{4, 2});
  xt::xarray<float, xt::layout_type::column_major> cm = xt::ones<float>({4, 3});
  REQUIRE_THROWS_AS(as_view(cm), shape_error);
}
