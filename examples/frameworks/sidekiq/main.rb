# A Sidekiq application's life, end to end: enqueue 200 jobs with Sidekiq::Client (and a job
# that fails once, one that always fails, one scheduled with perform_in), look at them through
# Sidekiq's API (Stats, Queue, ScheduledSet), start a real Sidekiq process
# (`sidekiq -r app.rb`) that runs them, and check every result it left in Redis, the retry that
# succeeded, the dead set and the processed/failed counters.
# Exits 1 with a message on any wrong result, and after RUN_TIMEOUT_SECONDS at the latest.
#
#   REDIS_URL=redis://127.0.0.1:6379/0 ruby examples/frameworks/sidekiq/main.rb
#
# It empties the database first (FLUSHDB): point it at a scratch database.
require "timeout"
require "tmpdir"
require "sidekiq/api"
require_relative "app"

RUN_TIMEOUT_SECONDS = 90
SQUARE_JOB_COUNT = 200
# perform_in's delay: long enough to tell a scheduled run from an immediate one.
SCHEDULE_DELAY_SECONDS = 2
# How long the Sidekiq process may take to finish the work (its scheduled poller sleeps up to
# 5 s before its first poll).
WORK_DEADLINE_SECONDS = 45
# Sidekiq flushes its processed/failed counters every 5 s (its heartbeat).
STATS_DEADLINE_SECONDS = 15
SIDEKIQ_CONCURRENCY = 5
# The API checks after the run move a few jobs around.
ADMIN_JOB_COUNT = 5
LOW_QUEUE = "low"
PROCESSED_QUEUES = ["critical", "default", LOW_QUEUE].freeze
# Jobs pushed once the processors are idle; their arguments start past the first batch's.
LATE_JOB_COUNT = 21
LATE_JOB_FIRST = 1000

def fail!(message)
  warn "sidekiq example: FAIL: #{message}"
  exit 1
end

def check(condition, message)
  fail!(message) unless condition
end

# Polls the block until it returns true; fails with `what` after `seconds`.
def wait_for(what, seconds)
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
  until yield
    fail!("timed out after #{seconds} s waiting for #{what}") if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
    sleep 0.05
  end
end

def enqueue
  Sidekiq.redis(&:flushdb)
  jids = Sidekiq::Client.push_bulk("class" => SquareJob, "args" => (0...SQUARE_JOB_COUNT).map { |number| [number] })
  check(jids.size == SQUARE_JOB_COUNT && jids.uniq.size == SQUARE_JOB_COUNT, "push_bulk returned #{jids.size} job ids")
  FlakyJob.perform_async("retried")
  DoomedJob.perform_async
  scheduled_at = Time.now.to_f
  scheduled_jid = ScheduledJob.perform_in(SCHEDULE_DELAY_SECONDS, "later")

  queue = Sidekiq::Queue.new("default")
  check(queue.size == SQUARE_JOB_COUNT + 2, "queue size #{queue.size} before the Sidekiq process starts")
  first = queue.find_job(jids.first)
  check(first && first.klass == "SquareJob" && first.args == [0], "job #{jids.first} in the queue is #{first&.item.inspect}")
  check(queue.latency >= 0, "queue latency #{queue.latency}")
  stats = Sidekiq::Stats.new
  check(stats.enqueued == SQUARE_JOB_COUNT + 2, "Stats#enqueued #{stats.enqueued}")
  check(stats.queues == { "default" => SQUARE_JOB_COUNT + 2 }, "Stats#queues #{stats.queues}")
  check(stats.scheduled_size == 1, "Stats#scheduled_size #{stats.scheduled_size}")
  entry = Sidekiq::ScheduledSet.new.find_job(scheduled_jid)
  check(entry && (entry.at.to_f - scheduled_at - SCHEDULE_DELAY_SECONDS).abs < 1, "scheduled entry #{entry&.item.inspect}")
  scheduled_at
end

def start_sidekiq
  log_path = ENV.fetch("SIDEKIQ_LOG", File.join(Dir.tmpdir, "sidekiq-example-#{Process.pid}.log"))
  # Three queues in strict order: each idle processor blocks in one BRPOP on all three lists.
  queue_arguments = PROCESSED_QUEUES.flat_map { |queue| ["-q", queue] }
  command = ["sidekiq", "-r", File.expand_path("app.rb", __dir__), "-c", SIDEKIQ_CONCURRENCY.to_s, *queue_arguments]
  pid = Process.spawn({ "REDIS_URL" => REDIS_URL }, *command, out: log_path, err: log_path)
  [pid, log_path]
end

def stop_sidekiq(pid)
  return unless pid

  Process.kill("TERM", pid)
  Timeout.timeout(15) { Process.wait(pid) }
rescue Errno::ESRCH, Errno::ECHILD
  nil
end

def check_results(scheduled_at)
  results = Sidekiq.redis { |redis| redis.hgetall(RESULTS_KEY) }
  (0...SQUARE_JOB_COUNT).each do |number|
    check(results[number.to_s] == (number * number).to_s, "square of #{number} is #{results[number.to_s].inspect}")
  end
  check(results.size == SQUARE_JOB_COUNT, "#{results.size} results")
  attempts, token = Sidekiq.redis { |redis| [redis.get(FLAKY_ATTEMPTS_KEY), redis.get(FLAKY_DONE_KEY)] }
  check(attempts == "2" && token == "retried", "flaky job: #{attempts.inspect} attempts, token #{token.inspect}")
  ran_at = Sidekiq.redis { |redis| redis.hget(SCHEDULED_RUN_KEY, "later") }.to_f
  check(ran_at >= scheduled_at + SCHEDULE_DELAY_SECONDS - 0.5, "scheduled job ran #{ran_at - scheduled_at} s after perform_in")

  dead = Sidekiq::DeadSet.new
  check(dead.size == 1, "dead set holds #{dead.size} jobs")
  dead_job = dead.first
  check(dead_job.klass == "DoomedJob" && dead_job["retry_count"] == 1 && dead_job["error_message"] == "this job always fails",
        "dead job #{dead_job.item.inspect}")
  check(Sidekiq::RetrySet.new.size.zero?, "retry set holds #{Sidekiq::RetrySet.new.size} jobs")
  check(Sidekiq::ScheduledSet.new.size.zero?, "schedule set holds #{Sidekiq::ScheduledSet.new.size} jobs")
  check(Sidekiq::Queue.new("default").size.zero?, "default queue still holds #{Sidekiq::Queue.new("default").size} jobs")
end

# Jobs pushed while every processor waits in BRPOP must wake one, whichever list they go to.
def late_pushes
  started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  numbers = (LATE_JOB_FIRST...(LATE_JOB_FIRST + LATE_JOB_COUNT)).to_a
  numbers.each_with_index do |number, index|
    SquareJob.set(queue: PROCESSED_QUEUES[index % PROCESSED_QUEUES.size]).perform_async(number)
  end
  wait_for("#{LATE_JOB_COUNT} jobs pushed to idle processors", WORK_DEADLINE_SECONDS) do
    Sidekiq.redis { |redis| redis.hlen(RESULTS_KEY) } == SQUARE_JOB_COUNT + LATE_JOB_COUNT
  end
  numbers.each do |number|
    value = Sidekiq.redis { |redis| redis.hget(RESULTS_KEY, number.to_s) }
    check(value == (number * number).to_s, "square of #{number} is #{value.inspect}")
  end
  puts format("sidekiq example: %d jobs pushed to idle processors ran in %.2f s",
              LATE_JOB_COUNT, Process.clock_gettime(Process::CLOCK_MONOTONIC) - started)
end

def check_process_and_stats
  processes = Sidekiq::ProcessSet.new
  check(processes.size == 1, "ProcessSet has #{processes.size} processes")
  check(processes.first["concurrency"] == SIDEKIQ_CONCURRENCY, "process #{processes.first.inspect}")
  # Runs: 200 squares, the flaky job twice, the doomed job twice, the scheduled job.
  processed = SQUARE_JOB_COUNT + 2 + 2 + 1 + LATE_JOB_COUNT
  failed = 1 + 2
  wait_for("Stats processed #{processed} failed #{failed}", STATS_DEADLINE_SECONDS) do
    stats = Sidekiq::Stats.new
    stats.processed == processed && stats.failed == failed
  end
  history = Sidekiq::Stats::History.new(1)
  check(history.processed.values.first == processed, "Stats::History processed #{history.processed}")
end

# What an operator does through Sidekiq's API once the process has stopped: look for jobs in the
# sets (ZSCAN), move them between sets and queues, clear queues and sets, reset the counters.
def administer
  low = Sidekiq::Queue.new(LOW_QUEUE)
  ADMIN_JOB_COUNT.times { |number| SquareJob.set(queue: LOW_QUEUE).perform_async(number) }
  check(low.size == ADMIN_JOB_COUNT, "queue #{LOW_QUEUE} holds #{low.size} jobs")
  check(Sidekiq::Queue.all.map(&:name).sort == PROCESSED_QUEUES.sort, "Queue.all gave #{Sidekiq::Queue.all.map(&:name)}")
  low.find_job(low.first.jid).delete
  check(low.size == ADMIN_JOB_COUNT - 1, "queue #{LOW_QUEUE} holds #{low.size} jobs after a delete")
  low.clear
  check(low.size.zero? && Sidekiq::Queue.all.map(&:name).sort == %w[critical default], "Queue#clear left #{low.size} jobs, queues #{Sidekiq::Queue.all.map(&:name)}")

  scheduled = Sidekiq::ScheduledSet.new
  jids = ADMIN_JOB_COUNT.times.map { |number| ScheduledJob.perform_in(3600 + number, "admin-#{number}") }
  check(scheduled.size == ADMIN_JOB_COUNT, "schedule set holds #{scheduled.size} jobs")
  found = scheduled.scan("admin-2").to_a
  check(found.size == 1 && found.first.args == ["admin-2"], "ScheduledSet#scan found #{found.map(&:args)}")
  scheduled.find_job(jids.first).add_to_queue
  check(Sidekiq::Queue.new("default").size == 1, "add_to_queue left the default queue with #{Sidekiq::Queue.new("default").size} jobs")
  scheduled.find_job(jids.last).delete
  check(scheduled.size == ADMIN_JOB_COUNT - 2, "schedule set holds #{scheduled.size} after add_to_queue and delete")
  check(scheduled.map(&:jid).sort == jids[1..-2].sort, "schedule set jids")
  scheduled.clear
  check(scheduled.size.zero?, "ScheduledSet#clear left #{scheduled.size} jobs")

  dead = Sidekiq::DeadSet.new
  dead.retry_all
  check(dead.size.zero?, "DeadSet#retry_all left #{dead.size} jobs")
  default = Sidekiq::Queue.new("default")
  check(default.size == 2 && default.map(&:klass).sort == %w[DoomedJob ScheduledJob], "default queue holds #{default.map(&:klass)}")
  default.clear

  stats = Sidekiq::Stats.new
  stats.reset("processed")
  check(Sidekiq::Stats.new.processed.zero? && Sidekiq::Stats.new.failed == 3, "Stats#reset(processed)")
  check(Sidekiq::Workers.new.size.zero?, "Workers reports #{Sidekiq::Workers.new.size} busy workers")
end

def main
  Timeout.timeout(RUN_TIMEOUT_SECONDS) do
    scheduled_at = enqueue
    sidekiq_pid, log_path = start_sidekiq
    begin
      wait_for("the jobs to run (Sidekiq's log: #{log_path})", WORK_DEADLINE_SECONDS) do
        Sidekiq.redis { |redis| redis.hlen(RESULTS_KEY) == SQUARE_JOB_COUNT && redis.exists?(FLAKY_DONE_KEY) && redis.hexists(SCHEDULED_RUN_KEY, "later") } &&
          Sidekiq::DeadSet.new.size == 1
      end
      check_results(scheduled_at)
      late_pushes
      check_process_and_stats
    ensure
      stop_sidekiq(sidekiq_pid)
    end
    wait_for("the process to leave ProcessSet", 10) { Sidekiq::ProcessSet.new.size.zero? }
    administer
    # A log the caller asked for stays; the default one goes once everything passed.
    File.delete(log_path) if ENV["SIDEKIQ_LOG"].nil? && File.exist?(log_path)
  end
  puts "sidekiq example: all checks passed"
rescue Timeout::Error
  fail!("no result after #{RUN_TIMEOUT_SECONDS} s")
end

main
