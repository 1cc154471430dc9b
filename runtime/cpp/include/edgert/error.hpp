// A user-facing error: a bad artifact, a missing file, an input of the wrong shape or dtype.
// edge-run prints its message and exits with code 2; nothing else should be thrown to users.
#pragma once

#include <stdexcept>
#include <string>

namespace edgert {

struct Error : std::runtime_error {
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace edgert
