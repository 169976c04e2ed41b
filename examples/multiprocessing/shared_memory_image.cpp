// Shared-memory image-like processing: a parent puts a 512x512 grey image in a SharedMemory
// segment, four forked workers each invert a quarter of the rows in place (no copying), and the
// parent checks the result. Python: multiprocessing.shared_memory.SharedMemory + Process.
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <iostream>
#include <span>

#include "concur/multiprocessing/shared_memory.hpp"

namespace mp = concur::multiprocessing;

constexpr std::size_t kWidth = 512, kHeight = 512, kWorkers = 4;

std::uint8_t pixel(std::size_t x, std::size_t y) { return static_cast<std::uint8_t>((x * 7 + y * 13) % 256); }

// What each worker runs: attach to the image by name and invert its band of rows.
int invert_rows(const std::string& name, std::size_t first_row, std::size_t rows) {
  mp::shared_memory::SharedMemory image({.name = name});
  std::span<std::byte> buf = image.buf();
  for (std::size_t y = first_row; y < first_row + rows; ++y)
    for (std::size_t x = 0; x < kWidth; ++x) buf[y * kWidth + x] = ~buf[y * kWidth + x];
  image.close();
  return 0;
}

int main() {
  mp::shared_memory::SharedMemory image({.create = true, .size = kWidth * kHeight});
  std::span<std::byte> buf = image.buf();
  for (std::size_t y = 0; y < kHeight; ++y)
    for (std::size_t x = 0; x < kWidth; ++x) buf[y * kWidth + x] = static_cast<std::byte>(pixel(x, y));

  const std::size_t band = kHeight / kWorkers;
  pid_t workers[kWorkers];
  for (std::size_t w = 0; w < kWorkers; ++w) {
    workers[w] = fork();
    if (workers[w] == 0) _exit(invert_rows(image.name(), w * band, band));
  }
  bool ok = true;
  for (pid_t pid : workers) {
    int status = 0;
    ok = waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0 && ok;
  }
  for (std::size_t y = 0; y < kHeight && ok; ++y)
    for (std::size_t x = 0; x < kWidth; ++x)
      if (std::to_integer<std::uint8_t>(buf[y * kWidth + x]) != static_cast<std::uint8_t>(~pixel(x, y))) ok = false;

  std::cout << "inverted a " << kWidth << "x" << kHeight << " image in shared memory with " << kWorkers
            << " processes: " << (ok ? "ok" : "WRONG") << "\n";
  image.close();
  image.unlink();
  return ok ? 0 : 1;
}
