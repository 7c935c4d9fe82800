// `gannet data prepare`: the Brown corpus as training data. Splits by document (stratified by
// genre), trains the tokenizer on the training split, and writes, in out_dir:
//   corpus_train.txt   training text the tokenizer was trained on (one sentence per line)
//   tokenizer.model    SentencePiece BPE model (and tokenizer.vocab, for reading)
//   train.tok, val.tok token files (see token_file.h); each document is followed by eos
//   docs.tsv           id, genre, split, token_offset, token_count (offset into its split's file,
//                      count including the eos)
//   prepare.json       stamp: the options and output sizes; written last
#pragma once
#include <cstdint>
#include <string>

namespace gannet::data {

struct PrepareOptions {
  std::string out_dir = "data/brown";
  int vocab_size = 8192;
  double val_fraction = 0.1;
  uint64_t seed = 1234;
  std::string source_dir;  // if set, use these files instead of npm
};

struct PrepareResult {
  bool up_to_date = false;  // nothing was done: outputs and stamp matched the options
  int docs = 0, train_docs = 0, val_docs = 0;
  int64_t train_tokens = 0, val_tokens = 0;
  int vocab_size = 0;
};

// Idempotent: when every output exists and prepare.json records the same options and output
// sizes, does nothing (and says so on stderr). Otherwise rebuilds everything; every file is written
// atomically and the stamp last, so an interrupted run is simply redone. Progress goes to stderr.
PrepareResult prepare_brown(const PrepareOptions& opt);

}  // namespace gannet::data
