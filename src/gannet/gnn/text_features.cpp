#include "gannet/gnn/text_features.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "gannet/core/error.h"
#include "gannet/core/rng.h"

namespace gannet::gnn {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char lower(char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; }

// Words of text: runs of letters and digits, also cut where letters and digits meet when
// split_digits is set.
std::vector<std::string> words(std::string_view text, bool split_digits) {
  std::vector<std::string> out;
  std::string cur;
  int prev = 0;  // kind of the previous character: 0 separator, 1 letter, 2 digit
  for (char c : text) {
    const int kind = is_letter(c) ? 1 : is_digit(c) ? 2 : 0;
    if (!cur.empty() && (kind == 0 || (split_digits && kind != prev))) out.push_back(std::move(cur)), cur.clear();
    if (kind) cur += lower(c);
    prev = kind;
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

// Document frequencies of the words of `documents`.
std::unordered_map<std::string, int64_t> document_frequencies(const std::vector<std::vector<std::string>>& documents) {
  std::unordered_map<std::string, int64_t> df;
  for (const auto& doc : documents) {
    std::vector<std::string> unique = doc;
    std::sort(unique.begin(), unique.end());
    unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
    for (const std::string& w : unique) ++df[w];
  }
  return df;
}

// One Cholesky-QR pass over y [m, l] (see orthonormalize_columns); `dropped` marks the columns
// found dependent, in this pass or before.
void cholesky_qr_pass(double* y, int64_t m, int64_t l, std::vector<bool>& dropped) {
  // The residual of a column after the ones before it, relative to its own norm, both squared:
  // below this the column is rounding noise (double rounding puts dependent columns near 1e-15).
  constexpr double kDependent = 1e-10;
  std::vector<double> g(l * l), r(l * l, 0.0);
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)l, (int)m, 1.0, y, (int)l, 0.0, g.data(), (int)l);
  // G = R^T R, R upper triangular, row by row. A dropped column keeps R_jj = 1 and no other entry
  // in its row, so that no later column subtracts it.
  for (int64_t j = 0; j < l; ++j) {
    double d = g[j * l + j];
    for (int64_t k = 0; k < j; ++k) d -= r[k * l + j] * r[k * l + j];
    if (dropped[j] || !(d > kDependent * g[j * l + j])) {
      dropped[j] = true;
      r[j * l + j] = 1.0;
      continue;
    }
    r[j * l + j] = std::sqrt(d);
    for (int64_t i = j + 1; i < l; ++i) {
      double e = g[j * l + i];
      for (int64_t k = 0; k < j; ++k) e -= r[k * l + j] * r[k * l + i];
      r[j * l + i] = e / r[j * l + j];
    }
  }
  // Q = Y R^-1.
  cblas_dtrsm(CblasRowMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, (int)m, (int)l, 1.0, r.data(),
              (int)l, y, (int)l);
  for (int64_t j = 0; j < l; ++j)
    if (dropped[j])
      for (int64_t i = 0; i < m; ++i) y[i * l + j] = 0.0;
}

// One Jacobi rotation of rows and columns p, q of a [n, n] (and of the columns of v) that zeroes
// a[p][q].
void jacobi_rotate(std::vector<double>& a, std::vector<double>& v, int64_t n, int64_t p, int64_t q) {
  const double apq = a[p * n + q];
  if (apq == 0.0) return;
  const double theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
  // t = tan(phi), the smaller root of t^2 + 2 theta t - 1 = 0; 1 / (2 theta) where theta^2 overflows.
  const double t = std::abs(theta) > 1e150 ? 0.5 / theta
                                           : (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
  const double c = 1.0 / std::sqrt(t * t + 1), s = t * c;
  for (int64_t k = 0; k < n; ++k) {
    const double akp = a[k * n + p], akq = a[k * n + q];
    a[k * n + p] = c * akp - s * akq, a[k * n + q] = s * akp + c * akq;
  }
  for (int64_t k = 0; k < n; ++k) {
    const double apk = a[p * n + k], aqk = a[q * n + k];
    a[p * n + k] = c * apk - s * aqk, a[q * n + k] = s * apk + c * aqk;
  }
  for (int64_t k = 0; k < n; ++k) {
    const double vkp = v[k * n + p], vkq = v[k * n + q];
    v[k * n + p] = c * vkp - s * vkq, v[k * n + q] = s * vkp + c * vkq;
  }
}

// Flips the sign of each column of u [m, k] whose entry of largest magnitude is negative: singular
// vectors are defined up to sign, and this makes the choice independent of the random start.
void fix_signs(std::vector<double>& u, int64_t m, int64_t k) {
  for (int64_t j = 0; j < k; ++j) {
    int64_t best = 0;
    for (int64_t i = 1; i < m; ++i)
      if (std::abs(u[i * k + j]) > std::abs(u[best * k + j])) best = i;
    if (u[best * k + j] < 0)
      for (int64_t i = 0; i < m; ++i) u[i * k + j] = -u[i * k + j];
  }
}

// The columns of U * S, each shifted to zero mean, all scaled by one factor so that the mean
// column variance is 1: f32 [rows, rank]. One factor for all, not one per column, keeps the
// spectrum: the leading components, which carry most of the text's signal, stay the largest.
Tensor scaled_components(const TruncatedSvd& svd) {
  const int64_t n = svd.rows, d = svd.rank;
  Tensor out = Tensor::zeros({n, d}, DType::f32);
  float* f = out.f32();
  std::vector<double> mean(d, 0.0);
  double var_sum = 0;
  for (int64_t j = 0; j < d; ++j) {
    for (int64_t i = 0; i < n; ++i) mean[j] += svd.u[i * d + j] * svd.s[j];
    mean[j] /= (double)n;
    for (int64_t i = 0; i < n; ++i) var_sum += std::pow(svd.u[i * d + j] * svd.s[j] - mean[j], 2);
  }
  const double var = var_sum / (double)n / (double)d;
  const double inv_std = var > 0 ? 1.0 / std::sqrt(var) : 0.0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) f[i * d + j] = (float)((svd.u[i * d + j] * svd.s[j] - mean[j]) * inv_std);
  return out;
}

}  // namespace

std::vector<std::string> name_tokens(std::string_view name) { return words(name, true); }
std::vector<std::string> text_tokens(std::string_view text) { return words(text, false); }

SparseRows transpose(const SparseRows& a) {
  SparseRows t;
  t.rows = a.cols, t.cols = a.rows;
  t.indptr.assign(t.rows + 1, 0);
  for (int32_t c : a.indices) ++t.indptr[c + 1];
  for (int64_t r = 0; r < t.rows; ++r) t.indptr[r + 1] += t.indptr[r];
  t.indices.resize(a.indices.size());
  t.values.resize(a.values.size());
  std::vector<int64_t> cursor(t.indptr.begin(), t.indptr.end() - 1);
  // Rows of a in ascending order: each row of the transpose fills with ascending columns.
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t p = a.indptr[r]; p < a.indptr[r + 1]; ++p) {
      const int64_t dst = cursor[a.indices[p]]++;
      t.indices[dst] = (int32_t)r;
      t.values[dst] = a.values[p];
    }
  return t;
}

void sparse_times_dense(const SparseRows& a, const double* b, int64_t k, double* c) {
#pragma omp parallel for schedule(dynamic, 256)
  for (int64_t r = 0; r < a.rows; ++r) {
    double* cr = c + r * k;
    std::fill(cr, cr + k, 0.0);
    for (int64_t p = a.indptr[r]; p < a.indptr[r + 1]; ++p) {
      const double v = a.values[p];
      const double* br = b + (int64_t)a.indices[p] * k;
      for (int64_t j = 0; j < k; ++j) cr[j] += v * br[j];
    }
  }
}

SparseRows tfidf(const std::vector<std::vector<std::string>>& documents, int64_t min_df,
                 std::vector<std::string>* vocabulary) {
  const auto df = document_frequencies(documents);
  std::vector<std::string> vocab;
  for (const auto& [w, f] : df)
    if (f >= min_df) vocab.push_back(w);
  std::sort(vocab.begin(), vocab.end());
  std::unordered_map<std::string_view, int32_t> column;
  std::vector<double> idf(vocab.size());
  const double n = (double)documents.size();
  for (size_t j = 0; j < vocab.size(); ++j) {
    column.emplace(vocab[j], (int32_t)j);
    idf[j] = std::log((1.0 + n) / (1.0 + (double)df.at(vocab[j]))) + 1.0;
  }
  SparseRows x;
  x.rows = (int64_t)documents.size(), x.cols = (int64_t)vocab.size();
  x.indptr.push_back(0);
  for (const auto& doc : documents) {
    std::vector<int32_t> cols;
    for (const std::string& w : doc)
      if (auto it = column.find(w); it != column.end()) cols.push_back(it->second);
    std::sort(cols.begin(), cols.end());
    const size_t begin = x.values.size();
    double norm2 = 0;
    for (size_t i = 0; i < cols.size();) {
      size_t e = i;
      while (e < cols.size() && cols[e] == cols[i]) ++e;
      const double v = (1.0 + std::log((double)(e - i))) * idf[cols[i]];
      x.indices.push_back(cols[i]), x.values.push_back((float)v), norm2 += v * v;
      i = e;
    }
    const double inv = norm2 > 0 ? 1.0 / std::sqrt(norm2) : 0.0;
    for (size_t p = begin; p < x.values.size(); ++p) x.values[p] = (float)(x.values[p] * inv);
    x.indptr.push_back((int64_t)x.values.size());
  }
  if (vocabulary) *vocabulary = std::move(vocab);
  return x;
}

int64_t orthonormalize_columns(double* y, int64_t m, int64_t l) {
  std::vector<bool> dropped(l, false);
  cholesky_qr_pass(y, m, l, dropped);
  cholesky_qr_pass(y, m, l, dropped);
  return (int64_t)std::count(dropped.begin(), dropped.end(), false);
}

void symmetric_eigen(std::vector<double> a, int64_t n, std::vector<double>* values, std::vector<double>* vectors) {
  GANNET_CHECK((int64_t)a.size() == n * n, "symmetric_eigen: ", a.size(), " entries for a ", n, "x", n, " matrix");
  std::vector<double> v(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i) v[i * n + i] = 1.0;
  // Cyclic sweeps until the off-diagonal part is negligible; Jacobi converges quadratically, so
  // the sweep cap is a guard against NaN input, not a budget.
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, total = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) (i == j ? total : off) += a[i * n + j] * a[i * n + j];
    if (!(off > 1e-30 * (total + off))) break;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) jacobi_rotate(a, v, n, p, q);
  }
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return a[x * n + x] > a[y * n + y]; });
  values->resize(n), vectors->resize(n * n);
  for (int64_t c = 0; c < n; ++c) {
    (*values)[c] = a[order[c] * n + order[c]];
    for (int64_t r = 0; r < n; ++r) (*vectors)[r * n + c] = v[r * n + order[c]];
  }
}

TruncatedSvd randomized_svd(const SparseRows& x, int64_t rank, int64_t oversampling, int power_iterations,
                            uint64_t seed) {
  const int64_t m = x.rows, n = x.cols;
  GANNET_CHECK(rank >= 1 && rank <= std::min(m, n), "randomized SVD: rank ", rank, " outside [1, min(", m, " rows, ",
               n, " columns)]");
  GANNET_CHECK(oversampling >= 0 && power_iterations >= 0, "randomized SVD: negative oversampling or iterations");
  const int64_t l = std::min(rank + oversampling, std::min(m, n));
  const SparseRows xt = transpose(x);
  // The tall factors are kept in double: Cholesky QR works on the Gram matrix, whose condition is
  // the square of the factor's, which float's 7 digits would not hold.
  std::vector<double> y(m * l), z(n * l);
  Rng rng(seed);
  for (double& w : z) w = rng.normal();  // the test matrix Omega [n, l]
  sparse_times_dense(x, z.data(), l, y.data());
  orthonormalize_columns(y.data(), m, l);
  for (int it = 0; it < power_iterations; ++it) {
    sparse_times_dense(xt, y.data(), l, z.data());
    orthonormalize_columns(z.data(), n, l);
    sparse_times_dense(x, z.data(), l, y.data());
    orthonormalize_columns(y.data(), m, l);
  }
  // z = B^T = x^T Q [n, l]; B B^T = z^T z [l, l] = W S^2 W^T.
  sparse_times_dense(xt, y.data(), l, z.data());
  std::vector<double> g(l * l), lambda, w;
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)l, (int)l, (int)n, 1.0, z.data(), (int)l, z.data(), (int)l,
              0.0, g.data(), (int)l);
  symmetric_eigen(std::move(g), l, &lambda, &w);
  TruncatedSvd svd;
  svd.rows = m, svd.rank = rank;
  svd.u.resize(m * rank);
  // U = Q W[:, :rank].
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)rank, (int)l, 1.0, y.data(), (int)l, w.data(),
              (int)l, 0.0, svd.u.data(), (int)rank);
  for (int64_t j = 0; j < rank; ++j) svd.s.push_back(std::sqrt(std::max(lambda[j], 0.0)));
  fix_signs(svd.u, m, rank);
  return svd;
}

TextFeatures text_features(const std::vector<std::string>& names, const std::vector<std::string>& texts,
                           const TextFeatureOptions& options) {
  GANNET_CHECK(names.size() == texts.size(), "text features: ", names.size(), " names but ", texts.size(), " texts");
  std::vector<std::vector<std::string>> docs(names.size());
  for (size_t v = 0; v < names.size(); ++v) {
    docs[v] = name_tokens(names[v]);
    for (std::string& w : text_tokens(texts[v])) docs[v].push_back(std::move(w));
  }
  const SparseRows x = tfidf(docs, options.min_df, nullptr);
  const int64_t d = options.dim;
  GANNET_CHECK(d >= 1, "text features: dimension must be >= 1, got ", d);
  GANNET_CHECK(d <= std::min(x.rows, x.cols), "text features: dimension ", d, " exceeds min(",
               x.rows, " documents, ", x.cols, " words seen in at least ", options.min_df, " documents)");
  const TruncatedSvd svd = randomized_svd(x, d, options.oversampling, options.power_iterations, options.seed);
  TextFeatures out;
  out.words = x.cols;
  out.features = scaled_components(svd);
  double total = 0, kept = 0;
  for (float v : x.values) total += (double)v * v;
  for (double sj : svd.s) kept += sj * sj;
  out.energy = total > 0 ? kept / total : 0.0;
  out.method = str("TF-IDF of name parts and synopsis (sublinear tf, smooth idf, unit rows, words in >= ",
                   options.min_df, " packages: ", x.cols, "), randomized SVD to ", d, " dims (", options.oversampling,
                   " extra columns, ", options.power_iterations, " power iterations, seed ", options.seed,
                   "), rows U*S centred per column, one scale for all (mean column variance 1)");
  return out;
}

}  // namespace gannet::gnn
