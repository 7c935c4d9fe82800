#include "gannet/data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "gannet/core/error.h"
#include "gannet/core/atomic_file.h"

namespace gannet::data {

namespace {

// SentencePiece statuses can span lines; gannet errors are one line.
std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

}  // namespace

Tokenizer Tokenizer::load(const std::string& model_path) {
  auto sp = std::make_shared<sentencepiece::SentencePieceProcessor>();
  std::error_code ec;
  GANNET_CHECK(std::filesystem::is_regular_file(model_path, ec), "cannot load tokenizer ", model_path,
               ": no such file");
  auto st = sp->Load(model_path);
  GANNET_CHECK(st.ok(), "cannot load tokenizer ", model_path, ": ", one_line(st.ToString()));
  Tokenizer t;
  int nl = sp->PieceToId("<0x0A>");
  t.newline_id_ = (nl != sp->unk_id() && sp->IsByte(nl)) ? nl : -1;
  t.sp_ = std::move(sp);
  return t;
}

void Tokenizer::train_bpe(const std::string& text_file, const std::string& model_prefix, int vocab_size) {
  std::error_code ec;
  GANNET_CHECK(std::filesystem::is_regular_file(text_file, ec), "tokenizer training: cannot open ", text_file);
  GANNET_CHECK(!model_prefix.empty(), "tokenizer training: empty model prefix");
  // 3 special pieces + 256 byte pieces come first; BPE needs room for characters and merges.
  GANNET_CHECK(vocab_size >= 260, "tokenizer training: vocab size ", vocab_size,
               " is too small (at least 260: 3 special + 256 byte pieces)");
  int threads = (int)std::clamp(std::thread::hardware_concurrency(), 1u, 8u);
  const std::unordered_map<std::string, std::string> args = {
      {"input", text_file},
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(vocab_size)},
      {"byte_fallback", "true"},
      {"character_coverage", "0.9995"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "true"},
      {"split_digits", "true"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      // Deterministic: use every sentence in file order, no sampling.
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"max_sentence_length", "65536"},
      {"num_threads", std::to_string(threads)},
      {"minloglevel", "2"},
  };
  std::string proto;  // trained in memory (no model_prefix), then written atomically below
  auto st = sentencepiece::SentencePieceTrainer::Train(args, nullptr, &proto);
  GANNET_CHECK(st.ok(), "tokenizer training on ", text_file, " failed: ", one_line(st.ToString()));

  sentencepiece::SentencePieceProcessor sp;
  st = sp.LoadFromSerializedProto(proto);
  GANNET_CHECK(st.ok(), "tokenizer training on ", text_file, " produced a bad model: ", one_line(st.ToString()));
  std::ostringstream vocab;
  for (int i = 0; i < sp.GetPieceSize(); ++i) vocab << sp.IdToPiece(i) << '\t' << sp.GetScore(i) << '\n';
  write_file_atomic(model_prefix + ".vocab", vocab.str());
  write_file_atomic(model_prefix + ".model", proto);  // last: the model marks completion
}

std::vector<int32_t> Tokenizer::encode(const std::string& text, AllowSpecial allow) const {
  std::vector<int32_t> out;
  if (allow == AllowSpecial::none) {
    encode_ordinary(text, out);
    return out;
  }
  std::vector<SpecialToken> specials;
  for (int id : {bos_id(), eos_id()})
    if (id >= 0) specials.push_back({sp_->IdToPiece(id), id});
  split_at_special_tokens(
      text, specials, [&](std::string_view piece) { encode_ordinary(piece, out); },
      [&](int32_t id) { out.push_back(id); });
  return out;
}

void Tokenizer::encode_ordinary(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<int> ids;
  auto encode_piece = [&](std::string_view s) {
    if (s.empty()) return;
    auto st = sp_->Encode(s, &ids);
    GANNET_CHECK(st.ok(), "tokenizer encode failed: ", one_line(st.ToString()));
    out.insert(out.end(), ids.begin(), ids.end());
  };
  if (newline_id_ < 0) {
    encode_piece(text);
    return;
  }
  for (size_t start = 0;;) {
    const size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      encode_piece(text.substr(start));
      return;
    }
    encode_piece(text.substr(start, nl - start));
    out.push_back(newline_id_);
    start = nl + 1;
  }
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  const int n = sp_->GetPieceSize();
  for (size_t i = 0; i < ids.size(); ++i)
    GANNET_CHECK(ids[i] >= 0 && ids[i] < n, "tokenizer decode: id ", ids[i], " at position ", i,
                 " is outside the vocabulary [0, ", n, ")");
  std::string out, piece;
  std::vector<int> seg;
  auto flush = [&]() {
    if (seg.empty()) return;
    auto st = sp_->Decode(seg, &piece);
    GANNET_CHECK(st.ok(), "tokenizer decode failed: ", one_line(st.ToString()));
    out += piece;
    seg.clear();
  };
  for (int32_t id : ids) {
    if (id == newline_id_) {
      flush();
      out += '\n';
    } else {
      seg.push_back(id);
    }
  }
  flush();
  return out;
}

std::string Tokenizer::piece(int32_t id) const {
  GANNET_CHECK(id >= 0 && id < sp_->GetPieceSize(), "tokenizer: id ", id, " is outside the vocabulary [0, ",
               sp_->GetPieceSize(), ")");
  return sp_->IdToPiece(id);
}

int Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }
int Tokenizer::eos_id() const { return sp_->eos_id(); }
int Tokenizer::bos_id() const { return sp_->bos_id(); }
int Tokenizer::unk_id() const { return sp_->unk_id(); }

}  // namespace gannet::data
