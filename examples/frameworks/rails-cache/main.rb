# A Rails application's cache, used as an application uses it: ActiveSupport's
# RedisCacheStore with a namespace, reading and writing objects, fetch with a block,
# read_multi/write_multi/fetch_multi, raw counters with increment/decrement, expiry,
# race_condition_ttl serving a stale entry while one caller recomputes it, and
# delete_matched. Exits 1 with a message on any wrong result or any error the store reports
# (RedisCacheStore swallows Redis errors by default and returns nil; the error handler below
# turns them into failures), and after RUN_TIMEOUT_SECONDS at the latest.
#
#   REDIS_URL=redis://127.0.0.1:6379/0 ruby examples/frameworks/rails-cache/main.rb
#   REDIS_DRIVER=hiredis REDIS_URL=redis://127.0.0.1:6379/0 ruby examples/frameworks/rails-cache/main.rb
require "timeout"
require "active_support"
require "active_support/core_ext/numeric/time"
require "active_support/cache"
require "active_support/cache/redis_cache_store"

RUN_TIMEOUT_SECONDS = 60
REDIS_URL = ENV.fetch("REDIS_URL", "redis://127.0.0.1:6379/0")
# redis-rb's reply parser: :ruby (its own) or :hiredis (the C parser, Debian's ruby-hiredis).
REDIS_DRIVER = ENV.fetch("REDIS_DRIVER", "ruby").to_sym
# A run-specific namespace keeps the example's keys apart from anything else in the database.
NAMESPACE = "rails-cache-example-#{Process.pid}-#{Time.now.to_i}"
PRODUCT_COUNT = 50
# Short enough that the example waits little for entries to expire.
SHORT_EXPIRY_SECONDS = 1

def fail!(message)
  warn "rails cache example: FAIL: #{message}"
  exit 1
end

def check(condition, message)
  fail!(message) unless condition
end

store_errors = []
CACHE = ActiveSupport::Cache::RedisCacheStore.new(
  url: REDIS_URL,
  driver: REDIS_DRIVER,
  namespace: NAMESPACE,
  error_handler: lambda { |method:, returning:, exception:|
    store_errors << "#{method}: #{exception.class}: #{exception.message}"
  },
)

# Waits until the entry under `name` is gone, polling; fails after `seconds`.
def wait_until_expired(name, seconds)
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
  while CACHE.exist?(name)
    fail!("#{name} still cached after #{seconds} s") if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
    sleep 0.05
  end
end

def objects
  product = { "id" => 7, "name" => "kettle", "tags" => %w[kitchen steel], "price" => 24.5 }
  check(CACHE.write("product/7", product), "write returned false")
  check(CACHE.read("product/7") == product, "read gave #{CACHE.read("product/7").inspect}")
  check(CACHE.exist?("product/7"), "exist? is false for a written entry")
  check(CACHE.read("product/missing").nil?, "read of a missing entry is not nil")
  # Values over compress_threshold (1 kB) are stored compressed.
  large = "x" * 10_000
  CACHE.write("page/large", large)
  check(CACHE.read("page/large") == large, "large value read back with #{CACHE.read("page/large")&.size} bytes")
  check(!CACHE.write("product/7", "other", unless_exist: true), "unless_exist overwrote an entry")
  check(CACHE.read("product/7") == product, "unless_exist changed the entry")
  check(CACHE.delete("product/7"), "delete returned false")
  check(!CACHE.exist?("product/7"), "entry still there after delete")
end

def fetching
  computed = 0
  first = CACHE.fetch("report/daily") { computed += 1; { "total" => 1234 } }
  second = CACHE.fetch("report/daily") { computed += 1; { "total" => 0 } }
  check(first == { "total" => 1234 } && second == first, "fetch gave #{first.inspect} then #{second.inspect}")
  check(computed == 1, "fetch ran its block #{computed} times")
  forced = CACHE.fetch("report/daily", force: true) { { "total" => 99 } }
  check(forced == { "total" => 99 } && CACHE.read("report/daily") == forced, "fetch force: gave #{forced.inspect}")
end

def multi
  products = (1..PRODUCT_COUNT).to_h { |id| ["product/#{id}", { "id" => id, "stock" => id * 3 }] }
  CACHE.write_multi(products)
  names = products.keys + ["product/none"]
  found = CACHE.read_multi(*names)
  check(found == products, "read_multi gave #{found.size} entries, expected #{products.size}")
  missing_computed = []
  fetched = CACHE.fetch_multi("product/1", "product/#{PRODUCT_COUNT + 1}") do |name|
    missing_computed << name
    { "computed" => name }
  end
  check(missing_computed == ["product/#{PRODUCT_COUNT + 1}"], "fetch_multi computed #{missing_computed.inspect}")
  check(fetched["product/1"] == products["product/1"] &&
        fetched["product/#{PRODUCT_COUNT + 1}"] == { "computed" => "product/#{PRODUCT_COUNT + 1}" },
        "fetch_multi gave #{fetched.inspect}")
  CACHE.write_multi({ "session/a" => 1, "session/b" => 2 }, expires_in: 1.hour)
  check(CACHE.read_multi("session/a", "session/b") == { "session/a" => 1, "session/b" => 2 }, "write_multi with expires_in")
  ttl_ms = CACHE.redis.pttl("#{NAMESPACE}:session/a")
  check(ttl_ms.positive? && ttl_ms <= 3_600_000, "write_multi with expires_in left a PTTL of #{ttl_ms}")
end

def counters
  check(CACHE.increment("hits") == 1, "increment of a missing counter")
  check(CACHE.increment("hits", 41) == 42, "increment by 41")
  check(CACHE.decrement("hits", 2) == 40, "decrement by 2")
  check(CACHE.read("hits", raw: true).to_i == 40, "raw read of the counter gave #{CACHE.read("hits", raw: true).inspect}")
  CACHE.write("limit", 10, raw: true)
  check(CACHE.decrement("limit") == 9, "decrement of a raw-written value")
  # increment with expires_in sets the key's TTL when it has none.
  CACHE.increment("per-minute", 1, expires_in: 1.minute)
  ttl_seconds = CACHE.redis.ttl("#{NAMESPACE}:per-minute")
  check(ttl_seconds.between?(1, 60), "increment with expires_in left a TTL of #{ttl_seconds}")
end

def expiry
  CACHE.write("token", "abc", expires_in: SHORT_EXPIRY_SECONDS.seconds)
  check(CACHE.read("token") == "abc", "entry with expires_in not readable at once")
  wait_until_expired("token", SHORT_EXPIRY_SECONDS + 5)
  check(CACHE.read("token").nil?, "expired entry still read")
end

# One caller finds an expired entry and recomputes it; a second caller, arriving meanwhile, is
# served the stale value instead of recomputing too.
def race_condition
  CACHE.write("prices", "stale", expires_in: SHORT_EXPIRY_SECONDS.seconds, race_condition_ttl: 10.seconds)
  sleep SHORT_EXPIRY_SECONDS + 0.2
  second_may_go = Queue.new
  first_may_finish = Queue.new
  first = Thread.new do
    CACHE.fetch("prices", expires_in: 1.minute, race_condition_ttl: 10.seconds) do
      second_may_go << true
      first_may_finish.pop
      "fresh"
    end
  end
  second_may_go.pop
  second_value = CACHE.fetch("prices", expires_in: 1.minute, race_condition_ttl: 10.seconds) { "recomputed twice" }
  first_may_finish << true
  check(first.value == "fresh", "the first caller got #{first.value.inspect}")
  check(second_value == "stale", "the second caller got #{second_value.inspect}, not the stale entry")
  check(CACHE.read("prices") == "fresh", "after the recompute the cache holds #{CACHE.read("prices").inspect}")
end

def delete_matched
  CACHE.write_multi((1..30).to_h { |id| ["user/#{id}/profile", id] })
  CACHE.write("user/index", "kept")
  CACHE.delete_matched("user/*/profile")
  left = (1..30).count { |id| CACHE.exist?("user/#{id}/profile") }
  check(left.zero?, "delete_matched left #{left} of 30 entries")
  check(CACHE.read("user/index") == "kept", "delete_matched removed an entry it does not match")
  check(CACHE.read("product/1") == { "id" => 1, "stock" => 3 }, "delete_matched removed another entry")
end

def clear_namespace
  CACHE.clear
  left = CACHE.redis.scan_each(match: "#{NAMESPACE}:*").count
  check(left.zero?, "clear left #{left} keys in the namespace")
end

begin
  Timeout.timeout(RUN_TIMEOUT_SECONDS) do
    %i[objects fetching multi counters expiry race_condition delete_matched clear_namespace].each do |step|
      send(step)
      check(store_errors.empty?, "the store reported errors in #{step}: #{store_errors.join("; ")}")
      puts "rails cache example: #{step}: ok"
    end
  end
rescue Timeout::Error
  fail!("no result after #{RUN_TIMEOUT_SECONDS} s")
end
puts "rails cache example: all checks passed"
