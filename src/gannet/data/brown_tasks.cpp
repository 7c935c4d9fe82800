#include "gannet/data/brown_tasks.h"

#include <cstring>

#include "gannet/core/error.h"

namespace gannet::data {

const std::vector<BrownTask>& brown_tasks() {
  static const std::vector<BrownTask> tasks = {
      {"brown-genre",
       {"news", "editorial", "reviews", "religion", "hobbies", "lore", "belles_lettres", "government", "learned",
        "fiction", "mystery", "science_fiction", "adventure", "romance", "humor"},
       {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}},
      {"brown-mode", {"informative", "imaginative"}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1}},
  };
  return tasks;
}

const BrownTask& brown_task(const std::string& name) {
  for (const BrownTask& t : brown_tasks())
    if (t.name == name) return t;
  fail(str("unknown classification task '", name, "' (known: brown-genre, brown-mode)"));
}

int brown_class_of(const BrownTask& task, char genre) {
  if (genre == 0) return -1;
  const char* at = std::strchr(kBrownGenres, genre);
  if (at == nullptr) return -1;
  return task.class_of_genre.at((size_t)(at - kBrownGenres));
}

}  // namespace gannet::data
