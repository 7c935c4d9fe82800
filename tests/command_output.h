// The standard output and exit status of a shell command (append " 2>&1" for its errors too), for
// tests that run the gannet binary as a user would.
#pragma once
#include <sys/wait.h>

#include <cstdio>
#include <string>
#include <utility>

namespace gannet::testing {

// The exit status (-1 where the command did not exit normally) and the standard output of a shell
// command.
inline std::pair<int, std::string> command_status(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  std::string out;
  char buf[512];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  const int rc = p ? pclose(p) : -1;
  return {rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

inline std::string command_output(const std::string& command) { return command_status(command).second; }

// `gannet ARGS` with the binary under test.
inline std::string gannet_output(const std::string& args) {
  return command_output(std::string(GANNET_BINARY) + " " + args);
}

}  // namespace gannet::testing
