// Dense node features from short texts (a package's name and synopsis): TF-IDF over the words,
// reduced to D dimensions by a randomized truncated SVD (Halko, Martinsson and Tropp 2011, with
// power iterations). The pieces are public so that tests can check each against a direct
// computation.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gannet/core/tensor.h"

namespace gannet::gnn {

// A package name's words: lowercased, split on every character that is not a letter or digit
// ('-', '.', '+') and where letters and digits meet ("python3-numpy" -> python, 3, numpy).
std::vector<std::string> name_tokens(std::string_view name);
// A text's words: lowercased maximal runs of ASCII letters and digits ("MP3 player" -> mp3, player).
std::vector<std::string> text_tokens(std::string_view text);

// A sparse matrix in compressed sparse rows; columns of a row ascending.
struct SparseRows {
  int64_t rows = 0, cols = 0;
  std::vector<int64_t> indptr;  // [rows + 1]
  std::vector<int32_t> indices;
  std::vector<float> values;
};
SparseRows transpose(const SparseRows& a);
// c = a * b: b is dense [a.cols, k] and c dense [a.rows, k], row-major. Parallel over rows, each
// row summed in a fixed order: the result does not depend on the thread count.
void sparse_times_dense(const SparseRows& a, const double* b, int64_t k, double* c);

// TF-IDF of tokenized documents: tf = 1 + ln(count), idf = ln((1 + n) / (1 + df)) + 1 (smooth),
// rows scaled to unit L2 norm (a document without kept words stays a zero row). Words that occur
// in fewer than min_df documents are dropped; the kept ones, ascending, are the columns.
SparseRows tfidf(const std::vector<std::vector<std::string>>& documents, int64_t min_df,
                 std::vector<std::string>* vocabulary = nullptr);

// Orthonormalizes the l columns of y (row-major [m, l]) in place by Cholesky QR, twice (the second
// pass restores the orthogonality the first loses to rounding). A column that depends on the ones
// before it (its residual below 1e-5 of its norm) becomes zero instead of noise. Returns the
// number of non-zero columns.
int64_t orthonormalize_columns(double* y, int64_t m, int64_t l);

// Eigenvalues (descending) and eigenvectors (the columns of `vectors`, row-major [n, n]) of a
// symmetric matrix a (row-major [n, n]), by cyclic Jacobi rotations.
void symmetric_eigen(std::vector<double> a, int64_t n, std::vector<double>* values, std::vector<double>* vectors);

struct TruncatedSvd {
  int64_t rows = 0, rank = 0;
  std::vector<double> u;  // [rows, rank]: left singular vectors, each column's largest entry positive
  std::vector<double> s;  // [rank], descending
};
// The leading `rank` singular triplets of x (Halko et al., algorithm 4.4): a Gaussian test matrix
// of rank + oversampling columns drawn from `seed`, `power_iterations` passes of x x^T with the
// columns re-orthonormalized after every product, then the small problem B B^T = W S^2 W^T of
// B = Q^T x, U = Q W. Deterministic for a seed and thread count (OpenBLAS's dense products may
// round differently under another thread count, in the last digits).
TruncatedSvd randomized_svd(const SparseRows& x, int64_t rank, int64_t oversampling, int power_iterations,
                            uint64_t seed);

struct TextFeatureOptions {
  int64_t dim = 128;
  int64_t min_df = 2;
  int64_t oversampling = 10;
  int power_iterations = 2;
  uint64_t seed = 0;
};

struct TextFeatures {
  Tensor features;  // f32 [N, dim]
  int64_t words = 0;   // TF-IDF columns
  double energy = 0;   // share of ||X||_F^2 the dim components hold
  std::string method;  // one line for summaries
};
// Rows U * S of the truncated SVD of the TF-IDF matrix (the documents' coordinates in the
// leading singular directions, equal to the projection X V), each column centred, all scaled by
// one factor to a mean column variance of 1. The spectrum is kept: per-column standardization
// would whiten the features, raising the tail components (mostly noise) to the leading ones'
// weight, and left product quantization (BiFeat) 30% more relative error for the same accuracy.
TextFeatures text_features(const std::vector<std::string>& names, const std::vector<std::string>& texts,
                           const TextFeatureOptions& options);

}  // namespace gannet::gnn
