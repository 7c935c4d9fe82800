// Bytes from a file, quoted in an error message: a message is printed as a C string, so a NUL
// would cut it, and raw invalid UTF-8 or control bytes garble the terminal. escape_bytes keeps
// printable ASCII and well-formed UTF-8 and writes every other byte (NUL, control bytes, bytes of
// ill-formed UTF-8) as \xNN.
#pragma once
#include <string>
#include <string_view>

namespace gannet {

std::string escape_bytes(std::string_view bytes);

}  // namespace gannet
