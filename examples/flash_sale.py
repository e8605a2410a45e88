#!/usr/bin/env python3
"""Flash sale: N concurrent clients race to buy from a small stock through one Lua script
(examples/flash_sale.lua: check the stock, DECRBY only when enough remains), then the same
through a function (FUNCTION LOAD + FCALL). Checks that nothing is oversold: the orders recorded
equal the units sold, and the stock never goes below zero.

    python3 examples/flash_sale.py [--port 6379] [--clients 1000] [--stock 500]

Works against Ember and Redis alike (redis-py). Exit status 0 when every check holds.
"""
import argparse
import os
import threading

import redis

SCRIPT = open(os.path.join(os.path.dirname(__file__), "flash_sale.lua")).read()
LIBRARY = "#!lua name=flashsale\n" + """
redis.register_function('buy', function(keys, args)
    local wanted = tonumber(args[1])
    local stock = tonumber(redis.call('GET', keys[1]) or '0')
    if stock < wanted then
        return -1
    end
    redis.call('RPUSH', keys[2], args[2])
    return redis.call('DECRBY', keys[1], wanted)
end)
"""


def sale(port, clients, stock, mode):
    admin = redis.Redis(port=port)
    stock_key, orders_key = "{sale}:stock", "{sale}:orders"
    admin.delete(stock_key, orders_key)
    admin.set(stock_key, stock)
    sha = admin.script_load(SCRIPT)
    if mode == "function":
        admin.function_load(LIBRARY, replace=True)
    start = threading.Barrier(clients)
    outcomes = [None] * clients

    def buyer(index):
        connection = redis.Redis(port=port)
        start.wait()
        if mode == "script":
            outcomes[index] = connection.evalsha(sha, 2, stock_key, orders_key, 1, f"buyer-{index}")
        else:
            outcomes[index] = connection.fcall("buy", 2, stock_key, orders_key, 1, f"buyer-{index}")
        connection.close()

    threads = [threading.Thread(target=buyer, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sold = sum(1 for outcome in outcomes if outcome != -1)
    left = int(admin.get(stock_key))
    orders = admin.llen(orders_key)
    ok = sold == min(clients, stock) and left == stock - sold and orders == sold and left >= 0
    print(f"{mode}: {clients} clients, stock {stock}: sold {sold}, left {left}, orders {orders}"
          f" -> {'no oversell' if ok else 'OVERSOLD OR LOST'}")
    return ok


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--stock", type=int, default=500)
    options = parser.parse_args()
    ok = all(sale(options.port, options.clients, options.stock, mode)
             for mode in ("script", "function"))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
