{#-
  Unsigned 64-bit arithmetic for the Cleora start vectors, on two bigint
  columns `hash_hi` and `hash_lo` that hold the high and low 32 bits.

  sklearn_basemodel._hashing mixes keys with SplitMix64, whose multiplications
  wrap around modulo 2^64. No adapter has an unsigned 64-bit type on all of
  DuckDB, PostgreSQL and Spark (Spark's bigint wraps only with ANSI mode off),
  so every product here is split into 16-bit pieces: no intermediate value
  exceeds 2^50, which bigint holds exactly everywhere.
-#}

{#- `x >> bits` for 0 <= x < 2^63. -#}
{% macro cleora_shr(x, bits) -%}
  {{- return(adapter.dispatch('cleora_shr', 'basemodel')(x, bits)) -}}
{%- endmacro %}

{% macro default__cleora_shr(x, bits) -%}
  (({{ x }}) >> {{ bits }})
{%- endmacro %}

{% macro spark__cleora_shr(x, bits) -%}
  shiftright({{ x }}, {{ bits }})
{%- endmacro %}

{#- `a xor b` for 0 <= a, b < 2^32, with `&` alone: the adapters spell xor
    differently (DuckDB xor(), PostgreSQL #, Spark ^). -#}
{% macro cleora_xor32(a, b) -%}
  (({{ a }}) + ({{ b }}) - 2 * (({{ a }}) & ({{ b }})))
{%- endmacro %}

{#- The low 32 bits of x * c, for 0 <= x, c < 2^32 (c a Python int). -#}
{% macro cleora_mul32_low(x, c) -%}
  ((({{ x }}) * {{ c % 65536 }} + ((({{ x }}) * {{ c // 65536 }}) & 65535) * 65536) & 4294967295)
{%- endmacro %}

{#- The 32-bit limbs (hi, lo) of a Python int taken modulo 2^64. -#}
{% macro cleora_limbs(value) -%}
  {%- set value = value % 18446744073709551616 -%}
  {{- return([value // 4294967296, value % 4294967296]) -}}
{%- endmacro %}

{#- One select over `query` (a subquery with columns `keep`, hash_hi and
    hash_lo) that replaces hash_hi, hash_lo by the given expressions. -#}
{% macro cleora_hash_step(query, keep, hi, lo) -%}
select
    {%- for column in keep %}
    {{ column }},
    {%- endfor %}
    {{ hi }} as hash_hi,
    {{ lo }} as hash_lo
from ({{ query }}) as cleora_step
{{ basemodel.cleora_fence() }}
{%- endmacro %}

{#- z + c modulo 2^64, c given as limbs (Python ints or column names). -#}
{% macro cleora_add64(query, keep, c_hi, c_lo) -%}
{%- set low = '(hash_lo + ' ~ c_lo ~ ')' -%}
{{ basemodel.cleora_hash_step(
    query, keep,
    hi='((hash_hi + ' ~ c_hi ~ ' + ' ~ basemodel.cleora_shr(low, 32) ~ ') & 4294967295)',
    lo='(' ~ low ~ ' & 4294967295)') }}
{%- endmacro %}

{#- z ^ (z >> bits) for 0 < bits < 32. -#}
{% macro cleora_xorshift64(query, keep, bits) -%}
{%- set shifted_lo = '(' ~ basemodel.cleora_shr('hash_lo', bits) ~ ' + (hash_hi & ' ~ (2 ** bits - 1) ~ ') * ' ~ 2 ** (32 - bits) ~ ')' -%}
{{ basemodel.cleora_hash_step(
    query, keep,
    hi=basemodel.cleora_xor32('hash_hi', basemodel.cleora_shr('hash_hi', bits)),
    lo=basemodel.cleora_xor32('hash_lo', shifted_lo)) }}
{%- endmacro %}

{#- z * c modulo 2^64 for a constant c (a Python int). The low limbs' product
    lo * c_lo = p0 + p1 * 2^16 is split so that its carry into the high limb
    is exact; the cross products only contribute their low 32 bits. -#}
{% macro cleora_mul64(query, keep, c) -%}
{%- set c_hi, c_lo = basemodel.cleora_limbs(c) -%}
{%- set inner -%}
select
    {%- for column in keep %}
    {{ column }},
    {%- endfor %}
    hash_lo * {{ c_lo % 65536 }} + ((hash_lo * {{ c_lo // 65536 }}) & 65535) * 65536 as low_product,
    hash_lo * {{ c_lo // 65536 }} as middle_product,
    {{ basemodel.cleora_mul32_low('hash_hi', c_lo) }} + {{ basemodel.cleora_mul32_low('hash_lo', c_hi) }} as cross_product
from ({{ query }}) as cleora_product
{{ basemodel.cleora_fence() }}
{%- endset -%}
{{ basemodel.cleora_hash_step(
    inner, keep,
    hi='((' ~ basemodel.cleora_shr('low_product', 32) ~ ' + ' ~ basemodel.cleora_shr('middle_product', 16) ~ ' + cross_product) & 4294967295)',
    lo='(low_product & 4294967295)') }}
{%- endmacro %}

{#- SplitMix64's finaliser of sklearn_basemodel._hashing._splitmix64 (with
    `add_golden`, which adds the golden-ratio increment first). -#}
{% macro cleora_splitmix64(query, keep, add_golden=true) -%}
{%- set z = query -%}
{%- if add_golden -%}
  {%- set golden = basemodel.cleora_limbs(11400714819323198485) -%}
  {%- set z = basemodel.cleora_add64(z, keep, golden[0], golden[1]) -%}
{%- endif -%}
{%- set z = basemodel.cleora_xorshift64(z, keep, 30) -%}
{%- set z = basemodel.cleora_mul64(z, keep, 13787848793156543929) -%}
{%- set z = basemodel.cleora_xorshift64(z, keep, 27) -%}
{%- set z = basemodel.cleora_mul64(z, keep, 10723151780598845931) -%}
{{ basemodel.cleora_xorshift64(z, keep, 31) }}
{%- endmacro %}
