#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "concur/core/error.hpp"

namespace {

TEST(Error, HierarchyDerivesFromRuntimeError) {
  EXPECT_THROW(throw concur::CancelledError(), concur::Error);
  EXPECT_THROW(throw concur::TimeoutError(), concur::Error);
  EXPECT_THROW(throw concur::InvalidStateError("x"), concur::Error);
  EXPECT_THROW(throw concur::Error("x"), std::runtime_error);
  EXPECT_STREQ(concur::CancelledError().what(), "operation was cancelled");
  EXPECT_STREQ(concur::TimeoutError().what(), "timed out");
  EXPECT_STREQ(concur::TimeoutError("custom").what(), "custom");
  EXPECT_STREQ(concur::CancelledError("why").what(), "why");
}

TEST(Error, ExceptionGroupHoldsEveryChildInOrder) {
  std::vector<std::exception_ptr> errs{std::make_exception_ptr(std::runtime_error("one")),
                                       std::make_exception_ptr(concur::TimeoutError()), std::make_exception_ptr(42)};
  concur::ExceptionGroup g("several failed", errs);
  ASSERT_EQ(g.exceptions().size(), 3u);
  EXPECT_EQ(g.exceptions()[0], errs[0]);
  EXPECT_EQ(g.exceptions()[1], errs[1]);
  EXPECT_EQ(g.exceptions()[2], errs[2]);
  EXPECT_THROW(std::rethrow_exception(g.exceptions()[1]), concur::TimeoutError);
  std::string what = g.what();
  EXPECT_NE(what.find("several failed"), std::string::npos);
  EXPECT_NE(what.find("3 sub-exceptions"), std::string::npos);
  EXPECT_NE(what.find("one"), std::string::npos);
  EXPECT_NE(what.find("timed out"), std::string::npos);
  const concur::Error& base = g;  // an ExceptionGroup is a concur::Error
  EXPECT_NE(std::string(base.what()).find("several failed"), std::string::npos);
}

TEST(Error, ExceptionGroupSingularAndEmpty) {
  concur::ExceptionGroup one("m", {std::make_exception_ptr(std::logic_error("L"))});
  EXPECT_NE(std::string(one.what()).find("1 sub-exception)"), std::string::npos);
  concur::ExceptionGroup none("m", {});
  EXPECT_TRUE(none.exceptions().empty());
}

TEST(Error, DescribeNamesTypeAndMessage) {
  EXPECT_EQ(concur::describe(nullptr), "no exception");
  EXPECT_EQ(concur::describe(std::make_exception_ptr(std::runtime_error("boom"))), "std::runtime_error: boom");
  EXPECT_EQ(concur::describe(std::make_exception_ptr(concur::TimeoutError())), "concur::TimeoutError: timed out");
  std::string d = concur::describe(std::make_exception_ptr(7));
  EXPECT_EQ(d, "int");
}

std::mutex g_m;
std::vector<std::string> g_contexts;
std::vector<std::string> g_descr;
void capture_hook(const std::string& context, const std::exception_ptr& e) {
  std::lock_guard g(g_m);
  g_contexts.push_back(context);
  g_descr.push_back(concur::describe(e));
}
void throwing_hook(const std::string&, const std::exception_ptr&) { throw std::runtime_error("hook failed"); }

TEST(Error, UnraisableHookReceivesReportsFromAnyThread) {
  g_contexts.clear();
  g_descr.clear();
  concur::set_unraisable_hook(&capture_hook);
  concur::report_unraisable("ctx-main", std::make_exception_ptr(std::runtime_error("a")));
  std::thread t([] { concur::report_unraisable("ctx-thread", std::make_exception_ptr(std::logic_error("b"))); });
  t.join();
  concur::set_unraisable_hook(nullptr);
  // Restored default: goes to stderr, not to our hook.
  testing::internal::CaptureStderr();
  concur::report_unraisable("ctx-default", std::make_exception_ptr(std::runtime_error("c")));
  std::string err = testing::internal::GetCapturedStderr();
  ASSERT_EQ(g_contexts.size(), 2u);
  EXPECT_EQ(g_contexts[0], "ctx-main");
  EXPECT_EQ(g_descr[0], "std::runtime_error: a");
  EXPECT_EQ(g_contexts[1], "ctx-thread");
  EXPECT_EQ(g_descr[1], "std::logic_error: b");
  EXPECT_EQ(err, "ctx-default: std::runtime_error: c\n");
}

TEST(Error, ReportUnraisableNeverThrowsEvenIfTheHookDoes) {
  concur::set_unraisable_hook(&throwing_hook);
  testing::internal::CaptureStderr();
  EXPECT_NO_THROW(concur::report_unraisable("ctx", std::make_exception_ptr(1)));
  std::string err = testing::internal::GetCapturedStderr();
  concur::set_unraisable_hook(nullptr);
  EXPECT_NE(err.find("could not be reported"), std::string::npos);
}

}  // namespace
