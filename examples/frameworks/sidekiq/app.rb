# The jobs of a small Sidekiq application, loaded both by the program that enqueues them
# (main.rb) and by the Sidekiq process that runs them (`sidekiq -r ./app.rb`).
# Each job leaves its result in Redis, where main.rb checks it.
require "sidekiq"

# Sidekiq 6.4 calls Redis#sadd with one member, which redis-rb 4.8 warns about on every push.
Redis.silence_deprecations = true

REDIS_URL = ENV.fetch("REDIS_URL", "redis://127.0.0.1:6379/0")
# Where the jobs leave their results; main.rb reads them back.
RESULTS_KEY = "sidekiq-example:squares"
FLAKY_ATTEMPTS_KEY = "sidekiq-example:flaky-attempts"
FLAKY_DONE_KEY = "sidekiq-example:flaky-done"
SCHEDULED_RUN_KEY = "sidekiq-example:scheduled-ran-at"
# Retries wait this many seconds instead of Sidekiq's default (15 s and more), so that the
# example's retry is over in a few seconds.
RETRY_DELAY_SECONDS = 1
# How often, on average, the Sidekiq process moves due jobs from the schedule and retry sets to
# their queues; the default (5 s) would make the example slow.
SCHEDULED_POLL_SECONDS = 0.5

Sidekiq.configure_client do |config|
  config.redis = { url: REDIS_URL }
end

Sidekiq.configure_server do |config|
  config.redis = { url: REDIS_URL }
  config.options[:poll_interval_average] = SCHEDULED_POLL_SECONDS
end

# Squares its argument and records the result under the job's argument.
class SquareJob
  include Sidekiq::Job

  def perform(number)
    Sidekiq.redis { |redis| redis.hset(RESULTS_KEY, number.to_s, number * number) }
  end
end

# Fails on its first attempt and succeeds on the retry.
class FlakyJob
  include Sidekiq::Job
  sidekiq_options retry: 3
  sidekiq_retry_in { |_count, _exception| RETRY_DELAY_SECONDS }

  def perform(token)
    attempt = Sidekiq.redis { |redis| redis.incr(FLAKY_ATTEMPTS_KEY) }
    raise "attempt #{attempt} fails on purpose" if attempt == 1

    Sidekiq.redis { |redis| redis.set(FLAKY_DONE_KEY, token) }
  end
end

# Always fails: after its one retry it lands in the dead set.
class DoomedJob
  include Sidekiq::Job
  sidekiq_options retry: 1
  sidekiq_retry_in { |_count, _exception| RETRY_DELAY_SECONDS }

  def perform
    raise "this job always fails"
  end
end

# Run through perform_in: records when it ran, to check it did not run early.
class ScheduledJob
  include Sidekiq::Job

  def perform(label)
    Sidekiq.redis { |redis| redis.hset(SCHEDULED_RUN_KEY, label, Time.now.to_f.to_s) }
  end
end
