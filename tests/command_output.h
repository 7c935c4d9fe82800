// The standard output of a shell command (append " 2>&1" for its errors too), for tests that run
// the gannet binary as a user would.
#pragma once
#include <cstdio>
#include <string>

namespace gannet::testing {

inline std::string command_output(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  std::string out;
  char buf[512];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  if (p) pclose(p);
  return out;
}

// `gannet ARGS` with the binary under test.
inline std::string gannet_output(const std::string& args) {
  return command_output(std::string(GANNET_BINARY) + " " + args);
}

}  // namespace gannet::testing
