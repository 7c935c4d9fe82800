// `gannet serve`: the OpenAI-compatible HTTP server (infer/server.h) over the engine and the
// continuous-batching scheduler; stops gracefully on SIGINT/SIGTERM.
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

void add_serve_command(CLI::App& app);

}  // namespace gannet::cli
