-- wrk script: AWS KMS requests signed with Signature Version 4, as the AWS SDKs sign them.
-- SHA-256 and HMAC-SHA-256 in LuaJIT (wrk's Lua); the day's signing key is derived once, and
-- each second's requests carry that second's X-Amz-Date and the signature over it (the server
-- checks every request in full: canonical request, SHA-256s, HMAC).
-- Environment: BODY_FILE, TARGET (TrentService.Encrypt), ACCESS_KEY, SECRET_KEY, REGION, HOSTPORT.
local bit = require("bit")
local band, bor, bxor, bnot, rshift, lshift, ror, tobit = bit.band, bit.bor, bit.bxor, bit.bnot, bit.rshift, bit.lshift, bit.ror, bit.tobit

local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

local function sha256(message)
  local h0, h1, h2, h3 = 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a
  local h4, h5, h6, h7 = 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
  local length = #message
  local bits = length * 8
  message = message .. "\128" .. string.rep("\0", (55 - length) % 64)
  message = message .. string.char(0, 0, 0, 0, band(rshift(bits, 24), 255), band(rshift(bits, 16), 255), band(rshift(bits, 8), 255), band(bits, 255))
  local w = {}
  for chunk = 1, #message, 64 do
    for i = 0, 15 do
      local a, b, c, d = message:byte(chunk + i * 4, chunk + i * 4 + 3)
      w[i] = bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
    end
    for i = 16, 63 do
      local s0 = bxor(ror(w[i - 15], 7), ror(w[i - 15], 18), rshift(w[i - 15], 3))
      local s1 = bxor(ror(w[i - 2], 17), ror(w[i - 2], 19), rshift(w[i - 2], 10))
      w[i] = tobit(w[i - 16] + s0 + w[i - 7] + s1)
    end
    local a, b, c, d, e, f, g, h = h0, h1, h2, h3, h4, h5, h6, h7
    for i = 0, 63 do
      local S1 = bxor(ror(e, 6), ror(e, 11), ror(e, 25))
      local ch = bxor(band(e, f), band(bnot(e), g))
      local t1 = tobit(h + S1 + ch + K[i + 1] + w[i])
      local S0 = bxor(ror(a, 2), ror(a, 13), ror(a, 22))
      local maj = bxor(band(a, b), band(a, c), band(b, c))
      local t2 = tobit(S0 + maj)
      h, g, f, e, d, c, b, a = g, f, e, tobit(d + t1), c, b, a, tobit(t1 + t2)
    end
    h0, h1, h2, h3 = tobit(h0 + a), tobit(h1 + b), tobit(h2 + c), tobit(h3 + d)
    h4, h5, h6, h7 = tobit(h4 + e), tobit(h5 + f), tobit(h6 + g), tobit(h7 + h)
  end
  local out = {}
  for _, v in ipairs({h0, h1, h2, h3, h4, h5, h6, h7}) do
    out[#out + 1] = string.char(band(rshift(v, 24), 255), band(rshift(v, 16), 255), band(rshift(v, 8), 255), band(v, 255))
  end
  return table.concat(out)
end

local function hex(bytes) return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end

local function hmac(key, message)
  if #key > 64 then key = sha256(key) end
  key = key .. string.rep("\0", 64 - #key)
  local inner, outer = {}, {}
  for i = 1, 64 do
    local k = key:byte(i)
    inner[i] = string.char(bxor(k, 0x36))
    outer[i] = string.char(bxor(k, 0x5c))
  end
  return sha256(table.concat(outer) .. sha256(table.concat(inner) .. message))
end

-- A self-check against a known SHA-256, so a broken port fails loudly rather than as 400s.
assert(hex(sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256 self-check")

local f = assert(io.open(assert(os.getenv("BODY_FILE")), "rb"))
local body = f:read("*a")
f:close()
local target, access, secret = os.getenv("TARGET"), os.getenv("ACCESS_KEY"), os.getenv("SECRET_KEY")
local region, hostport = os.getenv("REGION") or "us-east-1", os.getenv("HOSTPORT")
local payload = hex(sha256(body))
local signed = "content-type;host;x-amz-date;x-amz-target"
local day, signing, second, authorization, stamp = nil, nil, nil, nil, nil

local function sign()
  local now = os.time()
  if now == second then return end
  second = now
  stamp = os.date("!%Y%m%dT%H%M%SZ", now)
  local today = stamp:sub(1, 8)
  if today ~= day then
    day = today
    signing = hmac(hmac(hmac(hmac("AWS4" .. secret, day), region), "kms"), "aws4_request")
  end
  local canonical = "POST\n/\n\ncontent-type:application/x-amz-json-1.1\nhost:" .. hostport .. "\nx-amz-date:" .. stamp ..
    "\nx-amz-target:" .. target .. "\n\n" .. signed .. "\n" .. payload
  local scope = day .. "/" .. region .. "/kms/aws4_request"
  local toSign = "AWS4-HMAC-SHA256\n" .. stamp .. "\n" .. scope .. "\n" .. hex(sha256(canonical))
  authorization = "AWS4-HMAC-SHA256 Credential=" .. access .. "/" .. scope .. ", SignedHeaders=" .. signed .. ", Signature=" .. hex(hmac(signing, toSign))
end

-- The request of the current second, formatted once per second and then sent as is, so the
-- generator's own cost (it shares the machine with the server) stays that of a static request.
local formatted, formattedFor = nil, nil
function request()
  sign()
  if formattedFor ~= second then
    formattedFor = second
    formatted = wrk.format("POST", "/", {
      ["Host"] = hostport, ["Content-Type"] = "application/x-amz-json-1.1", ["X-Amz-Date"] = stamp,
      ["X-Amz-Target"] = target, ["Authorization"] = authorization,
    }, body)
  end
  return formatted
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("RESULT rps=%.1f p50=%.3f p99=%.3f non2xx=%d sockerr=%d\n", summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end
