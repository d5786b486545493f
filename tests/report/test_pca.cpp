#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include <Eigen/Dense>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/report/pca.hpp"

namespace rp = cpdiff::report;
using matrix = rp::pca::matrix;

namespace {

matrix random_matrix(int n, int d, std::uint64_t seed) {
  matrix m(n, d);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) m(i, j) = cpdiff::philox_normal(seed, 0, static_cast<std::uint64_t>(i * d + j)) * (1.0 + j % 3);
  return m;
}

// Reference from the SVD of the centred data: right singular vectors are the components, s^2 / (n - 1)
// the variances. Both flipped to the same sign convention (largest-magnitude entry positive).
void check_against_svd(const matrix& x, std::size_t k) {
  const rp::pca p = rp::pca::fit(x, k);
  const Eigen::RowVectorXd mu = x.colwise().mean();
  const Eigen::MatrixXd xc = x.rowwise() - mu;
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(xc, Eigen::ComputeThinV);
  const double n1 = static_cast<double>(x.rows() - 1);
  const double total = svd.singularValues().squaredNorm() / n1;
  REQUIRE(p.basis().rows() == static_cast<Eigen::Index>(k));
  for (Eigen::Index j = 0; j < static_cast<Eigen::Index>(k); ++j) {
    Eigen::VectorXd v = svd.matrixV().col(j);
    Eigen::Index at = 0;
    v.cwiseAbs().maxCoeff(&at);
    if (v(at) < 0) v = -v;
    const double var = svd.singularValues()(j) * svd.singularValues()(j) / n1;
    CHECK(p.explained_variance()(j) == Approx(var).epsilon(1e-9));
    CHECK(p.explained_variance_ratio()(j) == Approx(var / total).epsilon(1e-9));
    CHECK((p.basis().row(j).transpose() - v).norm() < 1e-8);
  }
  // The projection of the fitting rows is their centred coordinates in the basis, and transform agrees.
  const matrix proj = xc * p.basis().transpose();
  CHECK((p.projection() - proj).norm() < 1e-9);
  CHECK((p.transform(x) - proj).norm() < 1e-9);
}

}  // namespace

TEST_CASE("PCA of points on a line finds the line and projects new points to their coordinate", "[report][pca]") {
  // Points c + t u +- e with t symmetric around 0 and small noise e orthogonal to u, in +/- pairs at each t:
  // the mean is exactly c, noise and t are uncorrelated, so u is exactly the first principal direction.
  Eigen::Vector3d u(3, 4, 12);
  u /= 13.0;
  const Eigen::Vector3d c(1, -2, 0.5), w1(4, -3, 0), w2 = u.cross(w1).normalized();  // w1 _|_ u
  matrix x(40, 3);
  for (int i = 0; i < 20; ++i) {
    const double t = -2.0 + 4.0 * i / 19.0;
    const Eigen::Vector3d e = 0.01 * (std::sin(i) * w1.normalized() + std::cos(3 * i) * w2);
    x.row(2 * i) = (c + t * u + e).transpose();
    x.row(2 * i + 1) = (c + t * u - e).transpose();
  }
  const rp::pca p = rp::pca::fit(x, 2);
  CHECK(p.explained_variance_ratio()(0) > 0.99);
  CHECK(p.explained_variance_ratio().sum() <= 1.0 + 1e-12);
  CHECK((p.basis().row(0).transpose() - u).norm() < 1e-9);  // sign: the largest entry (12/13) positive
  CHECK((p.mean() - c).norm() < 1e-12);
  matrix q(2, 3);
  q.row(0) = (c + 2.5 * u).transpose();
  q.row(1) = (c - 0.75 * u).transpose();
  const matrix z = p.transform(q);
  CHECK(z(0, 0) == Approx(2.5).epsilon(1e-12));
  CHECK(z(1, 0) == Approx(-0.75).epsilon(1e-12));
  CHECK(std::abs(z(0, 1)) < 1e-9);
}

TEST_CASE("PCA explained variance on axis-aligned data", "[report][pca]") {
  // (+-3, 0) and (0, +-1): variances 18/3 = 6 and 2/3 along x and y.
  matrix x(4, 2);
  x << 3, 0, -3, 0, 0, 1, 0, -1;
  const rp::pca p = rp::pca::fit(x, 2);
  CHECK(p.explained_variance()(0) == Approx(6.0));
  CHECK(p.explained_variance()(1) == Approx(2.0 / 3.0));
  CHECK(p.explained_variance_ratio()(0) == Approx(0.9));
  CHECK(p.explained_variance_ratio()(1) == Approx(0.1));
  CHECK(std::abs(p.basis()(0, 0)) == Approx(1.0));
  CHECK(p.basis()(0, 0) > 0);
  CHECK(p.projection()(0, 0) == Approx(3.0));
  CHECK(p.projection()(1, 0) == Approx(-3.0));
}

TEST_CASE("PCA with more samples than features matches the SVD", "[report][pca]") {
  check_against_svd(random_matrix(60, 8, 7), 3);
}

TEST_CASE("PCA with more features than samples (Gram trick) matches the SVD", "[report][pca]") {
  const matrix x = random_matrix(12, 200, 11);
  check_against_svd(x, 4);
  // Generated rows projected with the training basis: the same as projecting by hand.
  const rp::pca p = rp::pca::fit(x, 2);
  const matrix g = random_matrix(5, 200, 99);
  const matrix expect = (g.rowwise() - p.mean().transpose()) * p.basis().transpose();
  CHECK((p.transform(g) - expect).norm() < 1e-10);
  CHECK((p.basis() * p.basis().transpose() - Eigen::MatrixXd::Identity(2, 2)).norm() < 1e-10);
}

TEST_CASE("PCA in the Gram regime with k beyond the rank gives zero components", "[report][pca]") {
  matrix x(3, 10);  // 3 points span at most 2 directions after centring
  x.setZero();
  x(0, 0) = 1, x(1, 1) = 2, x(2, 2) = 3;
  const rp::pca p = rp::pca::fit(x, 3);
  CHECK(p.explained_variance()(2) == 0);
  CHECK(p.basis().row(2).norm() == 0);
  CHECK(p.explained_variance_ratio().sum() == Approx(1.0));
}

TEST_CASE("PCA from flat float buffers", "[report][pca]") {
  const std::vector<float> rows{0, 0, 1, 1, 2, 2, 3, 3.5f};
  const rp::pca p = rp::pca::fit(std::span<const float>(rows), 4, 2, 1);
  CHECK(p.explained_variance_ratio()(0) > 0.99);
  const std::vector<float> more{1.5f, 1.6f};
  const matrix z = p.transform(std::span<const float>(more), 1);
  REQUIRE(z.rows() == 1);
  REQUIRE(z.cols() == 1);
  const auto xs = p.coordinate(p.projection(), 0);
  CHECK(xs.size() == 4);
  CHECK(xs[0] < xs[3]);
}

TEST_CASE("PCA rejects bad input", "[report][pca]") {
  CHECK_THROWS_AS(rp::pca::fit(matrix(1, 3), 1), cpdiff::shape_error);
  const matrix x = random_matrix(5, 3, 1);
  CHECK_THROWS_AS(rp::pca::fit(x, 0), cpdiff::config_error);
  CHECK_THROWS_AS(rp::pca::fit(x, 4), cpdiff::config_error);
  matrix bad = x;
  bad(2, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(rp::pca::fit(bad, 2), cpdiff::numeric_error);
  const rp::pca p = rp::pca::fit(x, 2);
  CHECK_THROWS_WITH(p.transform(matrix(2, 4)), Catch::Contains("pca::transform") && Catch::Contains("4"));
  const std::vector<double> flat(7);
  CHECK_THROWS_AS(rp::pca::fit(std::span<const double>(flat), 2, 3, 1), cpdiff::shape_error);
}
