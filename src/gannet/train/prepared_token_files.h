// The token files of a prepared data directory (`gannet data prepare`), as the language-model
// tasks (GPT, MLM) train on them.
#pragma once
#include <string>

#include "gannet/data/token_file.h"

namespace gannet::train {

struct PreparedTokenFiles {
  data::TokenFile train, val;
};

// Opens <data_dir>/train.tok and val.tok and checks them before the first step, so that a bad
// val.tok is not found only at the first validation: both exist (else the error names `gannet data
// prepare`), fit model_vocab, and were made with one tokenizer (the same vocabulary).
PreparedTokenFiles open_prepared_token_files(const std::string& data_dir, int64_t model_vocab);

}  // namespace gannet::train
