#pragma once
// Principal component analysis of a set of row vectors, for drawing latents in 2-D.
//
// fit() centres the rows and takes the top-k eigenvectors of the sample covariance (divided by n - 1).
// When there are more features than samples (d > n: flattened LoRA latents), it eigen-decomposes the
// n x n Gram matrix Xc Xc^T instead and maps its eigenvectors back (v = Xc^T u / sqrt(lambda)), which
// gives the same components at a fraction of the cost. The fitted basis then projects new rows, so
// generated latents land in the same coordinates as the training latents.
//
// Sign convention: each component is flipped so that its entry of largest magnitude is positive, which
// makes the result reproducible across both solvers and runs.
//
// A class template (report::pca is basic_pca<double>) so that the eigen-solvers are compiled only in
// programs that call fit(): as a plain class they cost every includer of the umbrella header ~6 s.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include <Eigen/Dense>

#include "cpdiff/core/error.hpp"

namespace cpdiff::report {

template <class Real = double>
class basic_pca {
 public:
  using matrix = Eigen::Matrix<Real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using vector = Eigen::Matrix<Real, Eigen::Dynamic, 1>;
  using square = Eigen::Matrix<Real, Eigen::Dynamic, Eigen::Dynamic>;

  // x: [n, d], one sample per row; n >= 2, 1 <= k <= min(n, d).
  static basic_pca fit(const matrix& x, std::size_t k) {
    const auto n = static_cast<std::size_t>(x.rows()), d = static_cast<std::size_t>(x.cols());
    CPDIFF_CHECK(n >= 2 && d >= 1, shape_error, "report::pca::fit", "need at least 2 rows and 1 column, got [", n,
                 ", ", d, "]");
    CPDIFF_CHECK(k >= 1 && k <= std::min(n, d), config_error, "report::pca::fit", "k must be in [1, min(n, d)] = [1, ",
                 std::min(n, d), "] for data [", n, ", ", d, "], got ", k);
    CPDIFF_CHECK(x.allFinite(), numeric_error, "report::pca::fit", "data [", n, ", ", d, "] holds NaN or Inf");
    basic_pca p;
    p.mean_ = x.colwise().mean().transpose();              // [d]
    const matrix xc = x.rowwise() - p.mean_.transpose();  // [n, d]
    const double denom = static_cast<double>(n - 1);
    const auto kk = static_cast<Eigen::Index>(k);
    p.components_.resize(kk, x.cols());  // [k, d]
    p.variance_.resize(kk);              // [k]
    if (d <= n) {
      const square cov = (xc.transpose() * xc) / denom;  // [d, d]
      Eigen::SelfAdjointEigenSolver<square> es(cov);
      CPDIFF_CHECK(es.info() == Eigen::Success, numeric_error, "report::pca::fit", "eigen-decomposition failed");
      p.total_variance_ = cov.trace();
      for (Eigen::Index j = 0; j < kk; ++j) {  // eigenvalues come in ascending order
        const Eigen::Index src = static_cast<Eigen::Index>(d) - 1 - j;
        p.variance_(j) = std::max(es.eigenvalues()(src), 0.0);
        p.components_.row(j) = es.eigenvectors().col(src).transpose();
      }
    } else {
      const square gram = xc * xc.transpose();  // [n, n]
      Eigen::SelfAdjointEigenSolver<square> es(gram);
      CPDIFF_CHECK(es.info() == Eigen::Success, numeric_error, "report::pca::fit", "eigen-decomposition failed");
      p.total_variance_ = gram.trace() / denom;
      const double tiny = 1e-12 * std::max(gram.trace(), 1e-300);
      for (Eigen::Index j = 0; j < kk; ++j) {
        const Eigen::Index src = static_cast<Eigen::Index>(n) - 1 - j;
        const double lambda = es.eigenvalues()(src);
        if (lambda > tiny) {
          p.variance_(j) = lambda / denom;
          p.components_.row(j) = (xc.transpose() * es.eigenvectors().col(src)).transpose() / std::sqrt(lambda);
        } else {  // the data spans fewer than k directions: a zero component projects everything to 0
          p.variance_(j) = 0;
          p.components_.row(j).setZero();
        }
      }
    }
    for (Eigen::Index j = 0; j < kk; ++j) {
      Eigen::Index at = 0;
      p.components_.row(j).cwiseAbs().maxCoeff(&at);
      if (p.components_(j, at) < 0) p.components_.row(j) *= -1.0;
    }
    p.projection_ = xc * p.components_.transpose();  // [n, k]
    return p;
  }

  // Rows given as a flat row-major buffer [n, d] of float or double.
  template <class T>
  static basic_pca fit(std::span<const T> rows, std::size_t n, std::size_t d, std::size_t k) {
    return fit(to_matrix(rows, n, d, "report::pca::fit"), k);
  }

  // Project rows [m, d] onto the fitted components: [m, k].
  matrix transform(const matrix& x) const {
    CPDIFF_CHECK(x.cols() == components_.cols(), shape_error, "report::pca::transform", "rows have ", x.cols(),
                 " features, the fit had ", components_.cols());
    return (x.rowwise() - mean_.transpose()) * components_.transpose();
  }
  template <class T>
  matrix transform(std::span<const T> rows, std::size_t m) const {
    return transform(to_matrix(rows, m, static_cast<std::size_t>(components_.cols()), "report::pca::transform"));
  }

  std::size_t components() const { return static_cast<std::size_t>(components_.rows()); }
  std::size_t features() const { return static_cast<std::size_t>(components_.cols()); }
  const vector& mean() const { return mean_; }    // [d]
  const matrix& basis() const { return components_; }      // [k, d], orthonormal rows
  const matrix& projection() const { return projection_; }  // [n, k]: the fitting rows, projected
  const vector& explained_variance() const { return variance_; }  // [k]
  // Share of the total variance (over all d directions) that each component explains: [k].
  vector explained_variance_ratio() const {
    if (total_variance_ <= 0) return vector::Zero(variance_.size());
    return variance_ / total_variance_;
  }
  // One column of the projection (component j), e.g. the x or y coordinates of a scatter plot.
  std::vector<double> coordinate(const matrix& projected, std::size_t j) const {
    CPDIFF_CHECK(j < static_cast<std::size_t>(projected.cols()), shape_error, "report::pca::coordinate",
                 "component ", j, " of a projection with ", projected.cols(), " columns");
    std::vector<double> out(static_cast<std::size_t>(projected.rows()));
    for (Eigen::Index i = 0; i < projected.rows(); ++i) out[static_cast<std::size_t>(i)] = projected(i, j);
    return out;
  }

 private:
  template <class T>
  static matrix to_matrix(std::span<const T> rows, std::size_t n, std::size_t d, const char* where) {
    CPDIFF_CHECK(rows.size() == n * d, shape_error, where, "buffer of ", rows.size(), " values is not [", n, ", ", d,
                 "]");
    matrix m(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
    std::copy(rows.begin(), rows.end(), m.data());
    return m;
  }

  vector mean_;     // [d]
  matrix components_;        // [k, d]
  vector variance_;  // [k]
  matrix projection_;        // [n, k]
  double total_variance_ = 0;
};

using pca = basic_pca<double>;

}  // namespace cpdiff::report
