#include "gannet/train/prepared_token_files.h"

#include <filesystem>

#include "gannet/core/error.h"

namespace gannet::train {

namespace {
data::TokenFile open_in(const std::string& data_dir, const char* name) {
  namespace fs = std::filesystem;
  const fs::path path = fs::path(data_dir) / name;
  GANNET_CHECK(fs::exists(path), "missing ", path.string(), ": run `gannet data prepare --out ", data_dir,
               "` first");
  return data::TokenFile::open(path.string());
}
}  // namespace

PreparedTokenFiles open_prepared_token_files(const std::string& data_dir, int64_t model_vocab) {
  PreparedTokenFiles f{open_in(data_dir, "train.tok"), open_in(data_dir, "val.tok")};
  for (const data::TokenFile* t : {&f.train, &f.val})
    GANNET_CHECK(t->vocab_size() <= model_vocab, t->path(), " has vocabulary ", t->vocab_size(),
                 ", more than model.vocab_size ", model_vocab);
  GANNET_CHECK(f.val.vocab_size() == f.train.vocab_size(), f.val.path(), " has vocabulary ", f.val.vocab_size(), ", ",
               f.train.path(), " has ", f.train.vocab_size(), ": they were not made with the same tokenizer");
  return f;
}

}  // namespace gannet::train
