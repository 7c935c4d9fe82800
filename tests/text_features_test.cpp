// Text features: tokenizers, TF-IDF and the randomized SVD, each against values computed by hand
// or by a direct method (a matrix of known singular vectors, a plain power iteration).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gannet/gnn/text_features.h"
#include "test_files.h"

namespace gannet::gnn {
namespace {

using Strings = std::vector<std::string>;

// A dense matrix [rows, cols] as SparseRows, zeros left out.
SparseRows sparse_of(const std::vector<double>& dense, int64_t rows, int64_t cols) {
  SparseRows a;
  a.rows = rows, a.cols = cols;
  a.indptr.push_back(0);
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j)
      if (dense[i * cols + j] != 0) a.indices.push_back((int32_t)j), a.values.push_back((float)dense[i * cols + j]);
    a.indptr.push_back((int64_t)a.values.size());
  }
  return a;
}

// Column t of an orthonormal DCT-II basis of length n (t >= 1): sqrt(2/n) cos(pi (i + 1/2) t / n).
std::vector<double> dct_column(int64_t n, int t) {
  std::vector<double> c(n);
  for (int64_t i = 0; i < n; ++i) c[i] = std::sqrt(2.0 / n) * std::cos(M_PI * (i + 0.5) * t / n);
  return c;
}

// x = sum_t s[t] u_t v_t^T with DCT columns u_t, v_t (t = 1, 2, ...): singular values s exactly.
std::vector<double> known_spectrum_matrix(int64_t m, int64_t n, const std::vector<double>& s) {
  std::vector<double> x(m * n, 0.0);
  for (size_t t = 0; t < s.size(); ++t) {
    const auto u = dct_column(m, (int)t + 1), v = dct_column(n, (int)t + 1);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) x[i * n + j] += s[t] * u[i] * v[j];
  }
  return x;
}

// |<column j of svd.u, u>|: 1 when they span the same direction.
double alignment(const TruncatedSvd& svd, int64_t j, const std::vector<double>& u) {
  double d = 0;
  for (int64_t i = 0; i < svd.rows; ++i) d += svd.u[i * svd.rank + j] * u[i];
  return std::abs(d);
}

TEST(TextFeaturesTest, NameTokensSplitOnSeparatorsAndDigitBoundaries) {
  EXPECT_EQ(name_tokens("python3-numpy"), (Strings{"python", "3", "numpy"}));
  EXPECT_EQ(name_tokens("libstdc++6"), (Strings{"libstdc", "6"}));
  EXPECT_EQ(name_tokens("0ad-data"), (Strings{"0", "ad", "data"}));
  EXPECT_EQ(name_tokens("libboost-filesystem1.74.0"), (Strings{"libboost", "filesystem", "1", "74", "0"}));
  EXPECT_EQ(name_tokens("G++-12"), (Strings{"g", "12"}));
  EXPECT_EQ(name_tokens(""), Strings{});
}

TEST(TextFeaturesTest, TextTokensAreLowercaseAlphanumericRuns) {
  EXPECT_EQ(text_tokens("GNU C++ compiler: MP3, x11!"), (Strings{"gnu", "c", "compiler", "mp3", "x11"}));
  EXPECT_EQ(text_tokens("  --  "), Strings{});
}

TEST(TextFeaturesTest, TfidfMatchesHandComputedRows) {
  // df: a 3, b 2, c 2, d 1 (dropped by min_df 2). idf_a = ln(5/4) + 1, idf_b = idf_c = ln(5/3) + 1;
  // row 0 = [(1 + ln 2) idf_a, idf_b] / norm, and so on (numbers worked out separately).
  std::vector<std::string> vocab;
  const SparseRows x = tfidf({{"a", "b", "a"}, {"a", "c"}, {"b", "c", "c", "d"}, {"a"}}, 2, &vocab);
  EXPECT_EQ(vocab, (Strings{"a", "b", "c"}));
  EXPECT_EQ(x.rows, 4);
  EXPECT_EQ(x.cols, 3);
  EXPECT_EQ(x.indptr, (std::vector<int64_t>{0, 2, 4, 6, 7}));
  EXPECT_EQ(x.indices, (std::vector<int32_t>{0, 1, 0, 2, 1, 2, 0}));
  const std::vector<double> expected = {0.8078683906158031, 0.5893629301574982, 0.6292275146695526, 0.7772211620785797,
                                        0.5085423203783267, 0.8610369959439763, 1.0};
  for (size_t p = 0; p < expected.size(); ++p) EXPECT_NEAR(x.values[p], expected[p], 1e-6) << p;
}

TEST(TextFeaturesTest, DocumentWithoutKeptWordsIsAZeroRow) {
  const SparseRows x = tfidf({{"a"}, {"rare"}, {"a"}}, 2);
  EXPECT_EQ(x.indptr, (std::vector<int64_t>{0, 1, 1, 2}));
  EXPECT_FLOAT_EQ(x.values[0], 1.0f);
}

TEST(TextFeaturesTest, SparseProductAndTransposeMatchDense) {
  // [[1, 0, 2], [0, 0, 0], [0, 3, 0]] * [[1, 2], [3, 4], [5, 6]] = [[11, 14], [0, 0], [9, 12]].
  const SparseRows a = sparse_of({1, 0, 2, 0, 0, 0, 0, 3, 0}, 3, 3);
  const std::vector<double> b = {1, 2, 3, 4, 5, 6};
  std::vector<double> c(6, -1.0);
  sparse_times_dense(a, b.data(), 2, c.data());
  EXPECT_EQ(c, (std::vector<double>{11, 14, 0, 0, 9, 12}));
  const SparseRows t = transpose(a);  // [[1, 0, 0], [0, 0, 3], [2, 0, 0]]
  EXPECT_EQ(t.indptr, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(t.indices, (std::vector<int32_t>{0, 2, 0}));
  EXPECT_EQ(t.values, (std::vector<float>{1, 3, 2}));
}

TEST(TextFeaturesTest, OrthonormalizationZeroesADependentColumn) {
  // Columns c0 = e0 + e1, c1 = e1 + e2, c2 = c0 + 2 c1 (dependent), c3 = 3 e5; y is [6, 4].
  std::vector<double> y(24, 0.0);
  auto set = [&](int col, std::vector<double> v) {
    for (int i = 0; i < 6; ++i) y[i * 4 + col] = v[i];
  };
  set(0, {1, 1, 0, 0, 0, 0});
  set(1, {0, 1, 1, 0, 0, 0});
  set(2, {1, 3, 2, 0, 0, 0});
  set(3, {0, 0, 0, 0, 0, 3});
  EXPECT_EQ(orthonormalize_columns(y.data(), 6, 4), 3);
  const double r2 = 1 / std::sqrt(2.0), r15 = 1 / std::sqrt(1.5);
  const std::vector<double> expected = {r2, -0.5 * r15, 0, 0, r2, 0.5 * r15, 0, 0, 0, r15, 0, 0,
                                        0,  0,          0, 0, 0,  0,         0, 0, 0, 0,   0, 1};
  for (int i = 0; i < 24; ++i) EXPECT_NEAR(y[i], expected[i], 1e-12) << i;
}

TEST(TextFeaturesTest, JacobiEigenMatchesHandComputedPairs) {
  std::vector<double> values, vectors;
  symmetric_eigen({2, 1, 1, 2}, 2, &values, &vectors);
  EXPECT_NEAR(values[0], 3, 1e-14);
  EXPECT_NEAR(values[1], 1, 1e-14);
  EXPECT_NEAR(std::abs(vectors[0]), 1 / std::sqrt(2.0), 1e-14);
  EXPECT_NEAR(vectors[0] * vectors[2], 0.5, 1e-14);   // first vector (1, 1) / sqrt 2, either sign
  EXPECT_NEAR(vectors[1] * vectors[3], -0.5, 1e-14);  // second (1, -1) / sqrt 2
  // [[4, 1, 0], [1, 3, 0], [0, 0, 5]]: 5, and (7 +- sqrt 5) / 2 from the 2x2 block.
  symmetric_eigen({4, 1, 0, 1, 3, 0, 0, 0, 5}, 3, &values, &vectors);
  EXPECT_NEAR(values[0], 5, 1e-13);
  EXPECT_NEAR(values[1], (7 + std::sqrt(5.0)) / 2, 1e-13);
  EXPECT_NEAR(values[2], (7 - std::sqrt(5.0)) / 2, 1e-13);
  EXPECT_NEAR(std::abs(vectors[2 * 3 + 0]), 1, 1e-13);  // the eigenvector of 5 is e2
}

TEST(TextFeaturesTest, RandomizedSvdIsExactWhenTheSampleCoversTheRank) {
  // Rank 8 and 4 + 6 = 10 sampled columns: the range is found exactly (two sampled columns are
  // dependent and dropped), whatever the seed.
  const std::vector<double> s = {10, 8, 6, 4, 3, 2, 1, 0.5};
  const SparseRows x = sparse_of(known_spectrum_matrix(40, 30, s), 40, 30);
  const TruncatedSvd svd = randomized_svd(x, 4, 6, 0, 1);
  ASSERT_EQ(svd.s.size(), 4u);
  for (int j = 0; j < 4; ++j) {
    EXPECT_NEAR(svd.s[j], s[j], 1e-5 * s[j]) << j;  // float storage of x limits the agreement
    EXPECT_NEAR(alignment(svd, j, dct_column(40, j + 1)), 1.0, 1e-6) << j;
  }
}

TEST(TextFeaturesTest, PowerIterationsMakeAShortSampleAccurate) {
  // 3 + 2 = 5 columns for a rank-8 matrix: two power iterations damp the tail by (2/6)^5 each
  // pass, so the leading three singular values come out to 1e-3.
  const std::vector<double> s = {10, 8, 6, 4, 3, 2, 1, 0.5};
  const SparseRows x = sparse_of(known_spectrum_matrix(40, 30, s), 40, 30);
  const TruncatedSvd svd = randomized_svd(x, 3, 2, 2, 7);
  for (int j = 0; j < 3; ++j) {
    EXPECT_NEAR(svd.s[j], s[j], 1e-3 * s[j]) << j;
    EXPECT_NEAR(alignment(svd, j, dct_column(40, j + 1)), 1.0, 1e-3) << j;
  }
}

TEST(TextFeaturesTest, RandomizedSvdMatchesAPlainPowerIterationOnARandomSparseMatrix) {
  std::mt19937 gen(5);
  std::uniform_real_distribution<double> unit(0, 1);
  const int64_t m = 50, n = 35;
  std::vector<double> dense(m * n);
  for (double& v : dense) v = unit(gen) < 0.2 ? (double)(float)unit(gen) : 0.0;
  // The reference: power iteration on A = x^T x, then on A - l1 v1 v1^T.
  std::vector<double> a(n * n, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = 0; q < n; ++q) a[p * n + q] += dense[i * n + p] * dense[i * n + q];
  std::vector<double> reference;
  for (int k = 0; k < 2; ++k) {
    std::vector<double> v(n, 1.0), w(n);
    double lambda = 0;
    for (int it = 0; it < 5000; ++it) {
      for (int64_t p = 0; p < n; ++p) {
        w[p] = 0;
        for (int64_t q = 0; q < n; ++q) w[p] += a[p * n + q] * v[q];
      }
      double norm = 0;
      for (double e : w) norm += e * e;
      norm = std::sqrt(norm);
      for (int64_t p = 0; p < n; ++p) v[p] = w[p] / norm;
      lambda = norm;
    }
    reference.push_back(std::sqrt(lambda));
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = 0; q < n; ++q) a[p * n + q] -= lambda * v[p] * v[q];
  }
  const TruncatedSvd svd = randomized_svd(sparse_of(dense, m, n), 2, 40, 2, 3);  // samples all 35 columns
  EXPECT_NEAR(svd.s[0], reference[0], 1e-6 * reference[0]);
  EXPECT_NEAR(svd.s[1], reference[1], 1e-6 * reference[1]);
}

TEST(TextFeaturesTest, FeaturesAreStandardizedDeterministicAndBounded) {
  const Strings names = {"python3-numpy", "python3-scipy", "libfoo1", "libfoo-dev", "mutt", "neomutt",
                         "vim", "vim-gtk3", "emacs", "python3-pandas", "libbar2", "libbar-dev"};
  const Strings texts = {"numerical library for python",   "scientific library for python", "foo library",
                         "foo library development files",  "text mail reader",              "mail reader",
                         "text editor",                    "text editor with gtk",          "editor",
                         "data analysis library for python", "bar library",               "bar library development files"};
  TextFeatureOptions o;
  o.dim = 3;
  o.seed = 9;
  const TextFeatures a = text_features(names, texts, o);
  ASSERT_EQ(a.features.shape(), (Shape{12, 3}));
  EXPECT_GT(a.energy, 0.0);
  EXPECT_LE(a.energy, 1.0 + 1e-9);
  // Centred columns, one common scale: the mean column variance is 1, and the columns keep
  // their different variances (not whitened).
  std::vector<double> var(3, 0.0);
  for (int j = 0; j < 3; ++j) {
    double mean = 0;
    for (int i = 0; i < 12; ++i) mean += a.features.f32()[i * 3 + j] / 12.0;
    for (int i = 0; i < 12; ++i) var[j] += std::pow(a.features.f32()[i * 3 + j] - mean, 2) / 12.0;
    EXPECT_NEAR(mean, 0, 1e-6);
  }
  EXPECT_NEAR((var[0] + var[1] + var[2]) / 3, 1, 1e-5);
  EXPECT_GT(*std::max_element(var.begin(), var.end()), 1.05 * *std::min_element(var.begin(), var.end()));
  const TextFeatures b = text_features(names, texts, o);
  EXPECT_EQ(std::memcmp(a.features.raw(), b.features.raw(), a.features.nbytes()), 0);
  o.dim = 500;
  EXPECT_TRUE(testing::has(testing::message_of([&] { text_features(names, texts, o); }), "dimension 500 exceeds"));
}

}  // namespace
}  // namespace gannet::gnn
