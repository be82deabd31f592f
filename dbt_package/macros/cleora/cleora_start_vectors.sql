{#-
  Cleora's start vectors in SQL: sklearn_basemodel._hashing's
  hashed_vectors(keys, n_components, seed, namespace), L2-normalised as in
  CleoraEmbedder's start_vectors:

    key hash  string keys: the first 8 bytes of md5('s' || key), big-endian;
              integer keys: splitmix64(key as uint64 xor 0x5EED1D5EED1D5EED)
    salt      splitmix64(first 8 bytes of md5('<seed>|<namespace>'))
    base      splitmix64(key hash xor salt)
    value i   u = splitmix64 finaliser of (base + (i + 2) * golden), then
              Box-Muller on its halves: sqrt(-2 ln a) cos(2 pi b) with
              a = float32(float32(hi) + 1) / 2^32, b = float32(lo) / 2^32

  `entities` is a relation or subquery with a column `entity_key`; the result
  has entity_key and cleora_0 .. cleora_<n_components - 1> (double), each row
  L2-normalised. `key_type` is 'string' (keys hashed as text, as Python hashes
  str keys) or 'integer' (as Python hashes int keys).
-#}
{% macro cleora_start_vectors(entities, n_components, seed, namespace='', key_type='string') -%}
{%- if key_type not in ['string', 'integer'] -%}
  {%- do exceptions.raise_compiler_error("basemodel: cleora key_type must be 'string' or 'integer', got '" ~ key_type ~ "'") -%}
{%- endif -%}
{%- set keep = ['entity_key'] -%}
{%- if key_type == 'string' -%}
  {%- set key_hash = basemodel.cleora_md5_limbs('select entity_key, md5(' ~ dbt.concat(["'s'", 'cast(entity_key as ' ~ dbt.type_string() ~ ')']) ~ ') as md5_hex from ' ~ entities ~ ' as cleora_keys', keep) -%}
{%- else -%}
  {%- set tag = basemodel.cleora_limbs(6840155702587907821) -%}
  {%- set key_hash = basemodel.cleora_splitmix64(
      'select entity_key, '
      ~ basemodel.cleora_xor32('(' ~ basemodel.cleora_shr('cast(entity_key as bigint)', 32) ~ ' & 4294967295)', tag[0]) ~ ' as hash_hi, '
      ~ basemodel.cleora_xor32('(cast(entity_key as bigint) & 4294967295)', tag[1]) ~ ' as hash_lo from ' ~ entities ~ ' as cleora_keys', keep) -%}
{%- endif -%}
{%- set salt_text = (seed | string) ~ '|' ~ namespace -%}
{%- set salt = basemodel.cleora_splitmix64(
    basemodel.cleora_md5_limbs("select md5('" ~ dbt.escape_single_quotes(salt_text) ~ "') as md5_hex", []), []) -%}
{%- set salted -%}
select
    key_hash.entity_key,
    {{ basemodel.cleora_xor32('key_hash.hash_hi', 'salt.hash_hi') }} as hash_hi,
    {{ basemodel.cleora_xor32('key_hash.hash_lo', 'salt.hash_lo') }} as hash_lo
from ({{ key_hash }}) as key_hash
cross join ({{ salt }}) as salt
{{ basemodel.cleora_fence() }}
{%- endset -%}
{%- set base = basemodel.cleora_splitmix64(salted, keep) -%}
{%- set per_dimension -%}
select base.entity_key, dims.dim, base.hash_hi, base.hash_lo, dims.counter_hi, dims.counter_lo
from ({{ base }}) as base
{#- A VALUES list, not a union: Spark 4 fails to ship a plan with a long
    union to its executors (ClassCastException on UnionExec.children). #}
cross join (
    values
    {%- for i in range(n_components) %}
    {%- set counter = basemodel.cleora_limbs((i + 2) * 11400714819323198485) %}
    ({{ i }}, {{ counter[0] }}, {{ counter[1] }}){{ ',' if not loop.last }}
    {%- endfor %}
) as dims (dim, counter_hi, counter_lo)
{%- endset -%}
{%- set keep = ['entity_key', 'dim'] -%}
{%- set mixed = basemodel.cleora_splitmix64(
    basemodel.cleora_add64(per_dimension, keep, 'counter_hi', 'counter_lo'), keep, add_golden=false) -%}
{%- set real = basemodel.cleora_type_float32() -%}
{%- set double = basemodel.type_double() -%}
{#- numpy computes Box-Muller in float32: round a and b as it does (a near 1
    decides whether ln(a) is 0 or a few 1e-8), the rest in double precision. -#}
{%- set long_values -%}
select
    entity_key,
    dim,
    sqrt(-2 * ln(cast(cast(cast(hash_hi as {{ real }}) + cast(1 as {{ real }}) as {{ real }}) as {{ double }}) * 2.3283064365386963e-10))
    * cos(6.2831854820251465 * (cast(cast(hash_lo as {{ real }}) as {{ double }}) * 2.3283064365386963e-10)) as value
from ({{ mixed }}) as cleora_mixed
{{ basemodel.cleora_fence() }}
{%- endset -%}
{%- set wide -%}
select
    entity_key,
    {%- for i in range(n_components) %}
    max(case when dim = {{ i }} then value end) as cleora_{{ i }}{{ ',' if not loop.last }}
    {%- endfor %}
from ({{ long_values }}) as cleora_long
group by entity_key
{%- endset -%}
{{ basemodel.cleora_normalize(wide, 'entity_key', n_components) }}
{%- endmacro %}

{#- `query` (columns `keep` and md5_hex, the 32 lowercase hex digits that
    md5() returns on every adapter) with hash_hi, hash_lo: its first 16 hex
    digits as two 32-bit numbers, digit by digit (no cast from hex text is
    common to the adapters). -#}
{% macro cleora_md5_limbs(query, keep) -%}
select
    {%- for column in keep %}
    {{ column }},
    {%- endfor %}
    {%- for limb in ['hi', 'lo'] %}
    {%- set first = 1 if limb == 'hi' else 9 %}
    (
        {%- for k in range(8) %}
        cast(position(substring(md5_hex, {{ first + k }}, 1) in '0123456789abcdef') - 1 as bigint) * {{ 16 ** (7 - k) }}{{ ' +' if not loop.last }}
        {%- endfor %}
    ) as hash_{{ limb }}{{ ',' if not loop.last }}
    {%- endfor %}
from ({{ query }}) as cleora_md5
{{ basemodel.cleora_fence() }}
{%- endmacro %}

{#- The IEEE single-precision type (PostgreSQL's `float` is double). -#}
{% macro cleora_type_float32() -%}
  {{- return(adapter.dispatch('cleora_type_float32', 'basemodel')()) -}}
{%- endmacro %}

{% macro default__cleora_type_float32() -%}
  real
{%- endmacro %}

{% macro spark__cleora_type_float32() -%}
  float
{%- endmacro %}
