#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/nn/add.hpp"
#include "cpdiff/nn/concat.hpp"
#include "cpdiff/nn/flatten.hpp"

using namespace cpdiff;

static_assert(layer<nn::flatten<1, -1, double>> && layer<nn::reshape<float>>,
              "flatten and reshape satisfy the one-input layer concept");

namespace {

tensor<double, cpu> normal(shape s, std::uint64_t stream) {
  tensor<double, cpu> t(s);
  ops::fill_normal(cpu{}, t.view(), 0.0, 1.0, 2024, stream);
  return t;
}

// Gradient of L = sum(op(a, b) * r) with respect to both inputs vs central differences.
template <class Op>
void gradcheck_two(Op& op, shape sa, shape sb) {
  auto a = normal(sa, 0), b = normal(sb, 1);
  auto y = op.forward(a.cview(), b.cview());
  auto r = normal(y.shape(), 2);
  auto [da, db] = op.backward(r.cview());
  REQUIRE(da.shape() == sa);
  REQUIRE(db.shape() == sb);
  std::vector<testing::grad_target> targets;
  targets.push_back({"a", a.data(), std::vector<double>(da.data(), da.data() + da.size())});
  targets.push_back({"b", b.data(), std::vector<double>(db.data(), db.data() + db.size())});
  testing::check_numeric([&] { return testing::dot(op.forward(a.cview(), b.cview()), r.cview()); }, targets);
}

}  // namespace

TEST_CASE("concat / add: gradcheck in double", "[nn][concat][add]") {
  SECTION("concat dim 0") { nn::concat<0, double> c; gradcheck_two(c, {2, 3}, {3, 3}); }
  SECTION("concat dim 1") { nn::concat<1, double> c; gradcheck_two(c, {2, 3, 4}, {2, 1, 4}); }
  SECTION("concat last (-1)") { nn::concat<-1, double> c; gradcheck_two(c, {2, 3, 4}, {2, 3, 2}); }
  SECTION("add") { nn::add<double> a; gradcheck_two(a, {2, 3, 4}, {2, 3, 4}); }
}

TEST_CASE("flatten / reshape: gradcheck in double", "[nn][flatten]") {
  parameter_store<double, cpu> ps;
  SECTION("flatten") { nn::flatten<1, -1, double> f; testing::gradcheck(f, ps, {2, 3, 4}); }
  SECTION("flatten middle dims") { nn::flatten<1, 2, double> f; testing::gradcheck(f, ps, {2, 3, 4, 2}); }
  SECTION("reshape") { nn::reshape<double> r({4, 3}); testing::gradcheck(r, ps, {2, 12}); }
}

TEST_CASE("flatten / reshape / add are view changes, not copies", "[nn][flatten][add]") {
  auto x = normal({2, 3, 4}, 3);
  nn::flatten<1, -1, double> fl;
  auto y = fl.forward(x.cview());
  CHECK(y.data() == x.data());
  CHECK(y.shape() == shape{2, 12});
  auto dy = normal({2, 12}, 4);
  auto dx = fl.backward(dy.cview());
  CHECK(dx.data() == dy.data());
  CHECK(dx.shape() == shape{2, 3, 4});

  nn::flatten<0, 1, double> lead;
  CHECK(lead.forward(x.cview()).shape() == shape{6, 4});
  nn::flatten<-2, -1, double> back;
  CHECK(back.forward(x.cview()).shape() == shape{2, 12});

  nn::reshape<double> r({2, 6});
  auto yr = r.forward(dy.cview());
  CHECK(yr.data() == dy.data());
  CHECK(yr.shape() == shape{2, 2, 6});

  nn::add<double> a;
  auto b = normal({2, 3, 4}, 5);
  a.forward(x.cview(), b.cview());
  auto g = normal({2, 3, 4}, 6);
  auto [da, db] = a.backward(g.cview());
  CHECK(da.data() == g.data());
  CHECK(db.data() == g.data());
}

TEST_CASE("concat: element placement by hand", "[nn][concat]") {
  // a [2, 1, 2] = {{{1, 2}}, {{3, 4}}}, b [2, 2, 2] = 10..17 along dim 1 -> y [2, 3, 2]
  tensor<double, cpu> a({2, 1, 2}), b({2, 2, 2});
  for (std::size_t i = 0; i < 4; ++i) a.data()[i] = double(i + 1);
  for (std::size_t i = 0; i < 8; ++i) b.data()[i] = double(i + 10);
  nn::concat<1, double> c;
  auto y = c.forward(a.cview(), b.cview());
  const double expect[] = {1, 2, 10, 11, 12, 13, 3, 4, 14, 15, 16, 17};
  REQUIRE(y.shape() == shape{2, 3, 2});
  for (std::size_t i = 0; i < 12; ++i) CHECK(y.data()[i] == expect[i]);
}

TEST_CASE("concat / add / flatten / reshape: bad input names the op and shapes", "[nn][concat][add][flatten]") {
  tensor<float, cpu> a({2, 3, 5}), b({2, 2, 4}), c({2, 3}), e({0, 3, 5}), ok({2, 2, 5});
  nn::concat<1> cat;
  REQUIRE_THROWS_AS(cat.forward(a.cview(), b.cview()), shape_error);
  REQUIRE_THROWS_WITH(cat.forward(a.cview(), b.cview()), Catch::Contains("nn::concat::forward") &&
                                                            Catch::Contains("[2, 3, 5]") && Catch::Contains("[2, 2, 4]"));
  REQUIRE_THROWS_WITH(cat.forward(a.cview(), c.cview()), Catch::Contains("nn::concat::forward") &&
                                                            Catch::Contains("[2, 3]"));
  tensor<float, cpu> e2({0, 2, 5});
  REQUIRE_THROWS_WITH(cat.forward(e.cview(), e2.cview()), Catch::Contains("nn::concat::forward") &&
                                                            Catch::Contains("empty"));
  nn::concat<3> cat3;
  REQUIRE_THROWS_WITH(cat3.forward(a.cview(), a.cview()), Catch::Contains("nn::concat::forward") &&
                                                             Catch::Contains("dimension 3"));
  cat.forward(a.cview(), ok.cview());
  REQUIRE_THROWS_WITH(cat.backward(a.cview()), Catch::Contains("nn::concat::backward") &&
                                                  Catch::Contains("[2, 5, 5]") && Catch::Contains("[2, 3, 5]"));

  nn::add<float> add;
  REQUIRE_THROWS_AS(add.forward(a.cview(), ok.cview()), shape_error);
  REQUIRE_THROWS_WITH(add.forward(a.cview(), ok.cview()), Catch::Contains("nn::add::forward") &&
                                                             Catch::Contains("[2, 3, 5]") && Catch::Contains("[2, 2, 5]"));
  REQUIRE_THROWS_WITH(add.forward(e.cview(), e.cview()), Catch::Contains("nn::add::forward"));
  add.forward(a.cview(), a.cview());
  REQUIRE_THROWS_WITH(add.backward(ok.cview()), Catch::Contains("nn::add::backward") && Catch::Contains("[2, 2, 5]"));

  tensor<float, cpu> v({6});
  nn::flatten<> fl;
  REQUIRE_THROWS_AS(fl.forward(v.cview()), shape_error);
  REQUIRE_THROWS_WITH(fl.forward(v.cview()), Catch::Contains("nn::flatten::forward") && Catch::Contains("[6]"));
  REQUIRE_THROWS_WITH(fl.forward(e.cview()), Catch::Contains("nn::flatten::forward") && Catch::Contains("[0, 3, 5]"));
  fl.forward(a.cview());
  REQUIRE_THROWS_WITH(fl.backward(a.cview()), Catch::Contains("nn::flatten::backward") && Catch::Contains("[2, 15]"));

  nn::reshape<float> r({4, 2});
  REQUIRE_THROWS_WITH(r.forward(a.cview()), Catch::Contains("nn::reshape::forward") && Catch::Contains("[2, 3, 5]"));
  REQUIRE_THROWS_AS(nn::reshape<float>(shape{}), config_error);
}
