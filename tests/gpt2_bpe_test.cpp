// GPT-2 byte-level BPE (data/gpt2_bpe.h) on a small hand-made vocabulary, whose encodings are
// derived by hand from the algorithm; and load_text_tokenizer (data/text_tokenizer.h).
#include "gannet/data/gpt2_bpe.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gannet/core/error.h"
#include "gannet/core/rng.h"
#include "gannet/data/text_tokenizer.h"
#include "gannet/data/tokenizer.h"
#include "gpt2_vocab_files.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
using namespace gannet::data;
namespace fs = std::filesystem;

namespace {

class Gpt2BpeTest : public TempDirTest {};

// Merges in rank order, as raw bytes. The vocabulary: id b = the byte b, then id 256 + r = the
// result of merge r, then <|endoftext|> (274).
const std::vector<std::pair<std::string, std::string>> kMerges = {
    {" ", "w"},     {"o", "r"},   {"l", "d"},         {" w", "or"},          {" wor", "ld"},  // 256..260
    {"H", "e"},     {"l", "l"},   {"He", "ll"},       {"Hell", "o"},                          // 261..264
    {"d", "o"},     {"do", "n"},  {"'", "t"},         {"1", "2"},            {" ", " "},      // 265..269
    {"c", "a"},     {"ca", "f"},  {"\xC3", "\xA9"},   {"caf", "\xC3\xA9"},                    // 270..273
};
constexpr int kEot = 274;

// Writes vocab.json and merges.txt into `dir`.
void write_test_vocab(const fs::path& dir) {
  const gannet::testing::Gpt2VocabFiles files = gannet::testing::gpt2_vocab_files(kMerges);
  write((dir / "vocab.json").string(), files.vocab_json);
  write((dir / "merges.txt").string(), files.merges_txt);
}

// The byte tokens of s (id = byte).
std::vector<int32_t> bytes_of(const std::string& s) {
  std::vector<int32_t> out;
  for (unsigned char c : s) out.push_back(c);
  return out;
}
std::vector<int32_t> ids(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace

TEST_F(Gpt2BpeTest, LoadsTheVocabulary) {
  write_test_vocab(dir_);
  Gpt2Bpe bpe = Gpt2Bpe::load(file("vocab.json"), file("merges.txt"));
  EXPECT_EQ(bpe.vocab_size(), 275);
  EXPECT_EQ(bpe.eos_id(), kEot);
  EXPECT_EQ(bpe.token(32), "\xC4\xA0");  // 'Ġ' U+0120
  EXPECT_EQ(bpe.token(10), "\xC4\x8A");  // 'Ċ' U+010A
  EXPECT_EQ(bpe.token(0), "\xC4\x80");   // 'Ā' U+0100
  EXPECT_EQ(bpe.token(0xAD), "\xC5\x83");  // soft hyphen, the last non-printable: U+0143
  EXPECT_EQ(bpe.token(260), "\xC4\xA0world");
  EXPECT_EQ(bpe.token_id("\xC4\xA0world"), 260);
  EXPECT_EQ(bpe.token_id("nope"), -1);
  EXPECT_THROW(bpe.token(275), Error);
}

TEST_F(Gpt2BpeTest, EncodesByMergeRank) {
  write_test_vocab(dir_);
  Gpt2Bpe bpe = Gpt2Bpe::load(file("vocab.json"), file("merges.txt"));
  // "Hello": He, ll, Hell, Hello. " world": Ġw, or, ld, Ġwor, Ġworld.
  EXPECT_EQ(bpe.encode("Hello world"), ids({{264, 260}}));
  // Contractions: "don" + "'t"; case matters ("'T" is no contraction: "'" then "T").
  EXPECT_EQ(bpe.encode("don't"), ids({{266, 267}}));
  EXPECT_EQ(bpe.encode("DON'T"), ids({bytes_of("DON'T")}));
  // Digits: "1234" -> 12 3 4; " 12" -> Ġ 12 (no merge of "Ġ 1").
  EXPECT_EQ(bpe.encode("1234 12"), ids({{268}, bytes_of("34"), {32, 268}}));
  // Runs of spaces: "a", "  " (ĠĠ), " b": the last space goes with the word.
  EXPECT_EQ(bpe.encode("a   b"), ids({{97, 269, 32, 98}}));
  EXPECT_EQ(bpe.encode("a  "), ids({{97, 269}}));
  // Newlines: "\n\n" before a word splits into "\n" and "\n".
  EXPECT_EQ(bpe.encode("a\n\nb"), ids({{97, 10, 10, 98}}));
  EXPECT_EQ(bpe.encode("a\n b"), ids({{97, 10, 32, 98}}));
  // "café": c a f C3 A9 -> ca, Ã©, caf, cafÃ©; with a space in front the Ġ stays alone.
  EXPECT_EQ(bpe.encode("café"), ids({{273}}));
  EXPECT_EQ(bpe.encode(" café"), ids({{32, 273}}));
  // An emoji (U+1F44B) is four byte tokens, after its space.
  EXPECT_EQ(bpe.encode("hi \xF0\x9F\x91\x8B"), ids({bytes_of("hi \xF0\x9F\x91\x8B")}));
  // Merges stay inside words: "ca" + " f" never make "caf"; inside one word they run on.
  EXPECT_EQ(bpe.encode("ca f"), ids({{270, 32, 102}}));
  EXPECT_EQ(bpe.encode("Hello worldHello"), ids({{264, 260, 264}}));
  EXPECT_EQ(bpe.encode(""), std::vector<int32_t>{});
  // A pair that occurs twice in a word merges at both places: "llll" -> ll ll.
  EXPECT_EQ(bpe.encode("llll"), ids({{262, 262}}));
  EXPECT_EQ(bpe.encode("lll"), ids({{262, 108}}));
  // The same results again, from the word cache.
  EXPECT_EQ(bpe.encode("Hello world Hello world"), ids({{264, 260, 32, 264, 260}}));
}

TEST_F(Gpt2BpeTest, EndOfTextIsOneTokenOnlyWhereAllowed) {
  write_test_vocab(dir_);
  Gpt2Bpe bpe = Gpt2Bpe::load(file("vocab.json"), file("merges.txt"));
  const auto all = AllowSpecial::all;
  EXPECT_EQ(bpe.encode("a<|endoftext|>b", all), ids({{97, kEot, 98}}));
  EXPECT_EQ(bpe.encode("Hello<|endoftext|> world", all), ids({{264, kEot, 260}}));
  EXPECT_EQ(bpe.encode("<|endoftext|><|endoftext|>", all), ids({{kEot, kEot}}));
  // Only the whole marker: "<|" "end" "o" "f"... with d o -> "do".
  EXPECT_EQ(bpe.encode("<|endoftext|", all), ids({bytes_of("<|en"), {265}, bytes_of("ftext|")}));
  EXPECT_EQ(bpe.decode({97, kEot, 98}), "a<|endoftext|>b");

  // By default (and with AllowSpecial::none) the marker is ordinary text, as tiktoken's
  // encode_ordinary: "<|" "end" "o" "f" ... "|>", never the end-of-text id.
  const std::vector<int32_t> plain_marker = ids({bytes_of("<|"), bytes_of("en"), {265}, bytes_of("ftext"), bytes_of("|>")});
  EXPECT_EQ(bpe.encode("<|endoftext|>"), plain_marker);
  EXPECT_EQ(bpe.encode("<|endoftext|>", AllowSpecial::none), plain_marker);
  EXPECT_EQ(bpe.encode("a<|endoftext|>b"), ids({{97}, plain_marker, {98}}));
  EXPECT_EQ(bpe.decode(bpe.encode("x<|endoftext|>")), "x<|endoftext|>");
  const TextTokenizer& through_interface = bpe;
  EXPECT_EQ(through_interface.encode("<|endoftext|>"), plain_marker);
  EXPECT_EQ(through_interface.encode("<|endoftext|>", all), std::vector<int32_t>{kEot});

  // A vocabulary without it has no eos, and the marker is plain text even where allowed.
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[gannet::testing::gpt2_symbols(std::string(1, (char)b))] = b;
  write(file("vocab.json"), vocab.dump());
  write(file("merges.txt"), "");
  Gpt2Bpe plain = Gpt2Bpe::load(file("vocab.json"), file("merges.txt"));
  EXPECT_EQ(plain.eos_id(), -1);
  EXPECT_EQ(plain.encode("<|endoftext|>", all), ids({bytes_of("<|"), bytes_of("endoftext"), bytes_of("|>")}));
}

TEST(SplitAtSpecialTokens, CutsAtTheLeftmostLongestMarker) {
  std::vector<std::string> got;
  auto run = [&](const std::string& text, const std::vector<SpecialToken>& specials) {
    got.clear();
    split_at_special_tokens(
        text, specials, [&](std::string_view s) { got.push_back(std::string(s)); },
        [&](int32_t id) { got.push_back(str("#", id)); });
    return got;
  };
  using V = std::vector<std::string>;
  const std::vector<SpecialToken> sp = {{"<s>", 1}, {"</s>", 2}, {"<s>x", 3}};
  EXPECT_EQ(run("a</s>b<s>c", sp), (V{"a", "#2", "b", "#1", "c"}));
  EXPECT_EQ(run("<s>xy<s><s>", sp), (V{"#3", "y", "#1", "#1"}));
  EXPECT_EQ(run("no markers <", sp), (V{"no markers <"}));
  EXPECT_EQ(run("", sp), V{});
  EXPECT_EQ(run("a<s>b", {}), (V{"a<s>b"}));
}

TEST_F(Gpt2BpeTest, PreTokenizerFollowsGpt2Pattern) {
  using W = std::vector<std::string>;
  EXPECT_EQ(Gpt2Bpe::split_words("Hello world! It's 2024, y'all."),
            (W{"Hello", " world", "!", " It", "'s", " 2024", ",", " y", "'", "all", "."}));
  EXPECT_EQ(Gpt2Bpe::split_words("we're they've I'm we'll he'd don't"),
            (W{"we", "'re", " they", "'ve", " I", "'m", " we", "'ll", " he", "'d", " don", "'t"}));
  EXPECT_EQ(Gpt2Bpe::split_words("abc123def"), (W{"abc", "123", "def"}));
  EXPECT_EQ(Gpt2Bpe::split_words("a   b"), (W{"a", "  ", " b"}));
  EXPECT_EQ(Gpt2Bpe::split_words("a \nb"), (W{"a", " ", "\n", "b"}));
  EXPECT_EQ(Gpt2Bpe::split_words("  x  "), (W{" ", " x", "  "}));
  EXPECT_EQ(Gpt2Bpe::split_words("\tx"), (W{"\t", "x"}));
  EXPECT_EQ(Gpt2Bpe::split_words("x !!'s ?"), (W{"x", " !!'", "s", " ?"}));
  EXPECT_EQ(Gpt2Bpe::split_words(" 'sup"), (W{" '", "sup"}));
  EXPECT_EQ(Gpt2Bpe::split_words("'sup"), (W{"'s", "up"}));
  // Latin-1 and beyond: letters by Unicode category; marks, symbols and emoji are "other".
  EXPECT_EQ(Gpt2Bpe::split_words("naïve café Ελληνικά"), (W{"naïve", " café", " Ελληνικά"}));
  EXPECT_EQ(Gpt2Bpe::split_words("中文字 日本語です"), (W{"中文字", " 日本語です"}));
  EXPECT_EQ(Gpt2Bpe::split_words("cafe\xCC\x81!"), (W{"cafe", "\xCC\x81!"}));  // combining acute
  EXPECT_EQ(Gpt2Bpe::split_words("x² ¾ ٣"), (W{"x", "²", " ¾", " ٣"}));
  EXPECT_EQ(Gpt2Bpe::split_words("a\xC2\xA0" "b"), (W{"a", "\xC2\xA0", "b"}));  // no-break space is \s
  EXPECT_EQ(Gpt2Bpe::split_words("hi \xF0\x9F\x91\x8B\xF0\x9F\x91\x8B"), (W{"hi", " \xF0\x9F\x91\x8B\xF0\x9F\x91\x8B"}));
  // Bytes that are not UTF-8 are "other".
  EXPECT_EQ(Gpt2Bpe::split_words("ab\xFF\xC3(cd"), (W{"ab", "\xFF\xC3(", "cd"}));
}

TEST_F(Gpt2BpeTest, DecodeInvertsEncode) {
  write_test_vocab(dir_);
  Gpt2Bpe bpe = Gpt2Bpe::load(file("vocab.json"), file("merges.txt"));
  const std::vector<std::string> pieces = {"Hello", " world", "don't", "'s", "'ll", " ", "  ", "\n", "\r\n", "\t",
                                           "12", "3", "café", "ü", "中", "\xF0\x9F\x91\x8B", "\xCC\x81", "!", "?!",
                                           "<|endoftext|>", "<|", "\xC2\xA0", "ll", "x"};
  Rng rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    std::string s;
    const int n = (int)rng.below(30);
    for (int i = 0; i < n; ++i) s += pieces[rng.below(pieces.size())];
    std::vector<int32_t> ids = bpe.encode(s);
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < bpe.vocab_size());
    ASSERT_EQ(bpe.decode(ids), s);
  }
  // Any bytes at all.
  for (int trial = 0; trial < 100; ++trial) {
    std::string s;
    const int n = (int)rng.below(64);
    for (int i = 0; i < n; ++i) s += (char)rng.below(256);
    ASSERT_EQ(bpe.decode(bpe.encode(s)), s);
  }
  // Byte tokens may end inside a character.
  EXPECT_EQ(bpe.decode({0xC3}), "\xC3");
  EXPECT_THROW(bpe.decode({275}), Error);
  EXPECT_TRUE(has(message_of([&] { bpe.decode({1, -1}); }), "-1"));
}

TEST_F(Gpt2BpeTest, LongWordsAndLargeText) {
  write_test_vocab(dir_);
  Gpt2Bpe bpe = Gpt2Bpe::load(file("vocab.json"), file("merges.txt"));
  // One 200 kB word (not cached; the merge heap keeps it n log n).
  const std::string word(200000, 'l');
  EXPECT_EQ(bpe.encode(word), std::vector<int32_t>(100000, 262));
  // A megabyte of text.
  std::string text;
  const char* words[] = {"Hello", " world", " don't", " café", " 1234", "\n", " the", " quick", " brown", " fox"};
  Rng rng(3);
  while (text.size() < (1 << 20)) text += words[rng.below(10)];
  auto start = std::chrono::steady_clock::now();
  std::vector<int32_t> ids = bpe.encode(text);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(bpe.decode(ids), text);
  EXPECT_LT(seconds, 5.0);  // about 0.1 s in a release build; generous for sanitizer builds
}

TEST_F(Gpt2BpeTest, LoadErrorsNameTheFile) {
  write_test_vocab(dir_);
  const std::string vocab = file("vocab.json"), merges = file("merges.txt");
  EXPECT_TRUE(has(message_of([&] { Gpt2Bpe::load(file("none.json"), merges); }), "none.json"));
  EXPECT_TRUE(has(message_of([&] { Gpt2Bpe::load(vocab, file("none.txt")); }), "none.txt"));

  const std::string good_vocab = [&] {
    std::ifstream f(vocab);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }();
  write(file("bad.json"), "{\"a\": 0,");
  EXPECT_TRUE(has(message_of([&] { Gpt2Bpe::load(file("bad.json"), merges); }), "bad.json"));
  write(file("bad.json"), "[1, 2]");
  EXPECT_TRUE(has(message_of([&] { Gpt2Bpe::load(file("bad.json"), merges); }), "object"));
  write(file("bad.json"), "{\"a\": \"0\"}");
  EXPECT_TRUE(has(message_of([&] { Gpt2Bpe::load(file("bad.json"), merges); }), "not an integer"));
  write(file("bad.json"), "{\"a\": 0, \"b\": 0}");
  EXPECT_TRUE(has(message_of([&] { Gpt2Bpe::load(file("bad.json"), merges); }), "both have id 0"));
  write(file("bad.json"), "{\"a\": 0, \"b\": 7}");
  EXPECT_TRUE(has(message_of([&] { Gpt2Bpe::load(file("bad.json"), merges); }), "outside 0..1"));
  write(file("bad.json"), "{\"a\": 0, \"b\": 1}");
  EXPECT_TRUE(has(message_of([&] { Gpt2Bpe::load(file("bad.json"), merges); }), "byte token"));

  write(file("bad.txt"), "#version: 0.2\nH e\nq z\n");
  std::string msg = message_of([&] { Gpt2Bpe::load(vocab, file("bad.txt")); });
  EXPECT_TRUE(has(msg, "bad.txt line 3") && has(msg, "'qz' is not in")) << msg;
  write(file("bad.txt"), "H e\nHe ll o\n");
  msg = message_of([&] { Gpt2Bpe::load(vocab, file("bad.txt")); });
  EXPECT_TRUE(has(msg, "bad.txt line 2") && has(msg, "two tokens")) << msg;
  write(file("bad.txt"), "Hx e\n");
  EXPECT_TRUE(has(message_of([&] { Gpt2Bpe::load(vocab, file("bad.txt")); }), "'Hx' is not in"));
  // CRLF line ends and no version line are fine.
  write(file("crlf.txt"), "H e\r\nl l\r\nHe ll\r\nHell o\r\n");
  EXPECT_EQ(Gpt2Bpe::load(vocab, file("crlf.txt")).encode("Hello"), ids({{264}}));
}

TEST_F(Gpt2BpeTest, LoadTextTokenizerByPath) {
  write_test_vocab(dir_);
  for (const std::string& path : {dir_.string(), file("vocab.json")}) {
    std::unique_ptr<TextTokenizer> tok = load_text_tokenizer(path);
    EXPECT_NE(dynamic_cast<Gpt2Bpe*>(tok.get()), nullptr);
    EXPECT_EQ(tok->vocab_size(), 275);
    EXPECT_EQ(tok->eos_id(), kEot);
    EXPECT_EQ(tok->encode("Hello world"), ids({{264, 260}}));
  }
  // A SentencePiece model.
  std::string text;
  for (int i = 0; i < 200; ++i) text += str("the quick brown fox ", i, " jumps over the lazy dog\n");
  write(file("text.txt"), text);
  Tokenizer::train_bpe(file("text.txt"), file("sp"), 300);
  std::unique_ptr<TextTokenizer> sp = load_text_tokenizer(file("sp.model"));
  EXPECT_NE(dynamic_cast<Tokenizer*>(sp.get()), nullptr);
  EXPECT_EQ(sp->vocab_size(), 300);
  EXPECT_EQ(sp->decode(sp->encode("the lazy fox")), "the lazy fox");

  EXPECT_TRUE(has(message_of([&] { load_text_tokenizer(file("nothing")); }), "no such file"));
  EXPECT_TRUE(has(message_of([&] { load_text_tokenizer(file("text.txt")); }), ".model"));
  fs::remove(file("merges.txt"));
  std::string msg = message_of([&] { load_text_tokenizer(dir_.string()); });
  EXPECT_TRUE(has(msg, "missing merges.txt")) << msg;
}
