// The sequence-classification tasks made from the Brown corpus, as label rules over a document's
// genre letter (brown.h): which classes each task has and which class a genre belongs to.
//   brown-genre  15 classes, the corpus's categories A..R (no I, O, Q), in letter order, named as
//                NLTK names them (news, editorial, ..., humor)
//   brown-mode   2 classes: informative prose (A..J) = 0, imaginative prose (K..R) = 1
#pragma once
#include <string>
#include <vector>

namespace gannet::data {

struct BrownTask {
  std::string name;
  std::vector<std::string> classes;
  std::vector<int> class_of_genre;  // the class of each letter of kBrownGenres, in its order
};

// The genre letters in class order of brown-genre.
inline constexpr const char* kBrownGenres = "abcdefghjklmnpr";

// Both tasks, brown-genre first.
const std::vector<BrownTask>& brown_tasks();
// The task of that name; throws a one-line gannet::Error listing the known names otherwise.
const BrownTask& brown_task(const std::string& name);
// The class of a document of genre `genre` ('a'..'r') in `task`, or -1 when the letter is not a
// Brown genre.
int brown_class_of(const BrownTask& task, char genre);

}  // namespace gannet::data
