// multiprocessing.shared_memory (SharedMemory, cleanup_leftovers) and sharedctypes (Value,
// Array), across real forked processes.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "multiprocessing/fork_support.hpp"
#include "support/helpers.hpp"
#include <cereal/archives/binary.hpp>
#include <gtest/gtest.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include "concur/multiprocessing/shared_memory.hpp"
#include "concur/multiprocessing/sharedctypes.hpp"

namespace mp = concur::multiprocessing;
using mp::shared_memory::SharedMemory;
using namespace concur::test;
using namespace std::chrono_literals;

namespace {

using SharedMemoryTest = ProcessTest;
using SharedCtypesTest = ProcessTest;

TEST_F(SharedMemoryTest, CreateAttachAndBufAreSharedWithAChild) {
  const std::string name = test_shm_name("frames");
  SharedMemory shm({.name = name, .create = true, .size = 4096});
  EXPECT_EQ(shm.name(), name);
  EXPECT_EQ(shm.size(), 4096U);
  ASSERT_EQ(shm.buf().size(), 4096U);
  for (std::size_t i = 0; i < 4096; ++i) shm.buf()[i] = static_cast<std::byte>(i % 251);

  pid_t child = fork_child([&] {
    SharedMemory other({.name = "/" + name});  // a leading '/' is accepted
    if (other.size() != 4096) return 1;
    for (std::size_t i = 0; i < 4096; ++i)
      if (other.buf()[i] != static_cast<std::byte>(i % 251)) return 2;
    other.buf()[0] = std::byte{0x7f};
    shm.buf()[1] = std::byte{0x6e};  // the inherited mapping is shared too
    return 0;
  });
  EXPECT_EQ(wait_child(child), 0);
  EXPECT_EQ(shm.buf()[0], std::byte{0x7f});
  EXPECT_EQ(shm.buf()[1], std::byte{0x6e});

  shm.close();
  EXPECT_FALSE(shm.is_open());
  EXPECT_THROW((void)shm.buf(), std::logic_error);
  shm.close();   // idempotent
  shm.unlink();  // allowed after close
  EXPECT_FALSE(shm_exists(name));
  EXPECT_THROW(shm.unlink(), concur::FileNotFoundError);
}

TEST_F(SharedMemoryTest, AnonymousSegmentGetsAUniqueName) {
  SharedMemory a({.create = true, .size = 10});
  SharedMemory b({.create = true, .size = 10});
  EXPECT_NE(a.name(), b.name());
  EXPECT_EQ(a.name().rfind("concur_" + std::to_string(getpid()) + "_", 0), 0U) << a.name();
  SharedMemory again({.name = a.name()});
  EXPECT_EQ(again.size(), 10U);
  a.buf()[9] = std::byte{42};
  EXPECT_EQ(again.buf()[9], std::byte{42});
  a.unlink();
  b.unlink();
}

TEST_F(SharedMemoryTest, ErrorsAreNamedAfterPythons) {
  const std::string name = test_shm_name("errors");
  EXPECT_THROW(SharedMemory({.name = name}), concur::FileNotFoundError);
  try {
    SharedMemory missing({.name = name});
  } catch (const concur::OSError& e) {
    EXPECT_EQ(e.errno_code(), ENOENT);
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
  }
  SharedMemory shm({.name = name, .create = true, .size = 1});
  EXPECT_THROW(SharedMemory({.name = name, .create = true, .size = 1}), concur::FileExistsError);
  EXPECT_THROW(SharedMemory({.name = test_shm_name("zero"), .create = true, .size = 0}), std::invalid_argument);
  EXPECT_THROW(SharedMemory({.name = "a/b"}), std::invalid_argument);
  EXPECT_THROW(SharedMemory({}), std::invalid_argument);
  shm.unlink();
}

TEST_F(SharedMemoryTest, MovedObjectKeepsTheMapping) {
  SharedMemory a({.name = test_shm_name("move"), .create = true, .size = 8});
  a.buf()[0] = std::byte{1};
  SharedMemory b(std::move(a));
  EXPECT_EQ(b.buf()[0], std::byte{1});
  SharedMemory c({.create = true, .size = 8});
  std::string c_name = c.name();
  c.unlink();
  c = std::move(b);
  EXPECT_EQ(c.buf()[0], std::byte{1});
  c.unlink();
}

TEST_F(SharedMemoryTest, ForeignSegmentIsMappedWhole) {
  const std::string name = test_shm_name("foreign");
  int fd = shm_open(("/" + name).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 100), 0);
  ASSERT_EQ(pwrite(fd, "hello", 5, 0), 5);
  close(fd);
  SharedMemory shm({.name = name});
  EXPECT_EQ(shm.size(), 100U);
  EXPECT_EQ(std::memcmp(shm.buf().data(), "hello", 5), 0);
  shm.unlink();
}

TEST_F(SharedMemoryTest, CleanupRemovesTrackedLeftoversOfAKilledCreator) {
  const std::string tracked = test_shm_name("left_tracked");
  const std::string untracked = test_shm_name("left_untracked");
  ReadyPipe ready;
  pid_t child = fork_child([&] {
    SharedMemory a({.name = tracked, .create = true, .size = 64});
    SharedMemory b({.name = untracked, .create = true, .size = 64, .track = false});
    ready.signal();
    for (;;) pause();  // until SIGKILLed: no chance to clean up
    return 0;
  });
  ASSERT_TRUE(ready.wait());
  // A live creator's segments are left alone.
  auto removed = mp::shared_memory::cleanup_leftovers();
  EXPECT_EQ(std::count(removed.begin(), removed.end(), tracked), 0);
  kill_child(child);
  ASSERT_TRUE(shm_exists(tracked));
  ASSERT_TRUE(shm_exists(untracked));

  removed = mp::shared_memory::cleanup_leftovers();
  EXPECT_EQ(std::count(removed.begin(), removed.end(), tracked), 1);
  EXPECT_EQ(std::count(removed.begin(), removed.end(), untracked), 0);
  EXPECT_FALSE(shm_exists(tracked));
  EXPECT_TRUE(shm_exists(untracked));  // track = false: meant to outlive its creator
  SharedMemory({.name = untracked}).unlink();
}

TEST_F(SharedMemoryTest, TrackedSegmentIsUnlinkedAtNormalExitOfItsCreatorOnly) {
  const std::string parents = test_shm_name("exit_parent");
  const std::string tracked = test_shm_name("exit_tracked");
  const std::string untracked = test_shm_name("exit_untracked");
  SharedMemory mine({.name = parents, .create = true, .size = 16});
  pid_t child = fork_child([&] {
    // Never closed or unlinked, on purpose: the exit handler unlinks the tracked one.
    auto* keep_tracked = new SharedMemory({.name = tracked, .create = true, .size = 16});
    auto* keep_untracked = new SharedMemory({.name = untracked, .create = true, .size = 16, .track = false});
#if defined(__SANITIZE_ADDRESS__)
    __lsan_ignore_object(keep_tracked);
    __lsan_ignore_object(keep_untracked);
#endif
    (void)keep_tracked;
    (void)keep_untracked;
    std::exit(0);  // a normal exit runs atexit handlers; the parent's segment must survive it
    return 0;
  });
  EXPECT_EQ(wait_child(child), 0);
  EXPECT_FALSE(shm_exists(tracked));
  EXPECT_TRUE(shm_exists(untracked));
  EXPECT_TRUE(shm_exists(parents));
  SharedMemory({.name = untracked}).unlink();
  mine.unlink();
}

TEST_F(SharedCtypesTest, ValueCounterUnderGetLockAcrossFourProcesses) {
  const std::int64_t iters = stress_iters(10000);
  mp::Value<long> counter(0);
  mp::Array<long> done(4, /*lock=*/false);  // increments each child made (a time budget may cut it)
  std::vector<pid_t> kids;
  for (int k = 0; k < 4; ++k) {
    kids.push_back(fork_child([&, k] {
      Budget budget(std::chrono::seconds(20));
      for (std::int64_t i = 0; i < iters && !budget.exhausted(); ++i) {
        std::scoped_lock g(counter.get_lock());
        counter.value() += 1;
        done[static_cast<std::size_t>(k)] += 1;
      }
      return 0;
    }));
  }
  for (pid_t p : kids) EXPECT_EQ(wait_child(p, 60s), 0);
  long expected = 0;
  for (long d : done) expected += d;
  EXPECT_EQ(counter.value(), expected);
  if (std::getenv("CONCUR_STRESS_ITERS") == nullptr) {
    EXPECT_EQ(counter.value(), 40000);
  }
}

TEST_F(SharedCtypesTest, ArrayCountersUnderGetLockAcrossFourProcesses) {
  const std::int64_t iters = stress_iters(10000);
  mp::Array<long> arr(std::vector<long>{0, 100, 0, 0, 0});
  ASSERT_EQ(arr.size(), 5U);
  EXPECT_EQ(arr[1], 100);
  std::vector<pid_t> kids;
  for (int k = 0; k < 4; ++k) {
    kids.push_back(fork_child([&, k] {
      Budget budget(std::chrono::seconds(20));
      for (std::int64_t i = 0; i < iters && !budget.exhausted(); ++i) {
        std::scoped_lock g(arr.get_lock());
        arr[0] += 1;                                // shared by all
        arr[static_cast<std::size_t>(k) + 1] += 1;  // this child's own count
      }
      return 0;
    }));
  }
  for (pid_t p : kids) EXPECT_EQ(wait_child(p, 60s), 0);
  long per_child = arr[2] + arr[3] + arr[4] + (arr[1] - 100);
  EXPECT_EQ(arr[0], per_child);
  if (std::getenv("CONCUR_STRESS_ITERS") == nullptr) {
    EXPECT_EQ(arr[0], 40000);
  }
  long sum = 0;
  for (long v : arr.span()) sum += v;
  EXPECT_EQ(sum, 2 * arr[0] + 100);
}

struct Point {
  double x, y;
};

TEST_F(SharedCtypesTest, HandleRoundTripInAChild) {
  mp::Value<Point> point(Point{1.5, 2.5});
  mp::Array<int> arr(std::vector<int>{1, 2, 3});
  mp::Value<long> bare(7, /*lock=*/false);
  EXPECT_THROW((void)bare.get_lock(), std::logic_error);

  // cereal: a Value travels as its handle
  std::stringstream ss;
  {
    cereal::BinaryOutputArchive out(ss);
    out(point, arr);
  }
  pid_t child = fork_child([&] {
    auto p = mp::Value<Point>::from_handle(point.handle());
    if (p.value().x != 1.5 || p.value().y != 2.5) return 1;
    mp::Value<Point> q;
    mp::Array<int> a;
    cereal::BinaryInputArchive in(ss);
    in(q, a);
    if (a.size() != 3 || a[2] != 3) return 2;
    {
      std::scoped_lock g(q.get_lock(), a.get_lock());
      q.value().x = 10;
      a[0] = 100;
    }
    auto b = mp::Value<long>::from_handle(bare.handle());
    b.value() = 8;
    return 0;
  });
  EXPECT_EQ(wait_child(child), 0);
  EXPECT_EQ(point.value().x, 10);
  EXPECT_EQ(arr[0], 100);
  EXPECT_EQ(bare.value(), 8);

  // wrong type or kind
  EXPECT_THROW(mp::Value<int>::from_handle(bare.handle()), std::invalid_argument);
  EXPECT_THROW(mp::Array<long>::from_handle(bare.handle()), std::invalid_argument);
  auto h = bare.handle();
  h.kind = mp::detail::kArrayKind;
  EXPECT_THROW(mp::Array<long>::from_handle(h), std::invalid_argument);
}

TEST_F(SharedCtypesTest, CopiesShareAndTheLastCopyUnlinks) {
  std::string name;
  {
    mp::Value<int> v(1);
    name = v.handle().name;
    EXPECT_TRUE(shm_exists(name));
    mp::Value<int> copy = v;
    copy.value() = 5;
    EXPECT_EQ(v.value(), 5);
    auto attached = mp::Value<int>::from_handle(v.handle());
    EXPECT_EQ(attached.value(), 5);
  }
  EXPECT_FALSE(shm_exists(name));
}

}  // namespace
