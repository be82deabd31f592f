{#- Fails with the rows that one relation has more often than the other
    (multiset difference, both ways). Both relations must have the same
    columns in the same order; NULLs compare equal. Arguments under
    `arguments:` (unpacked here on dbt < 1.10). -#}
{% test equal_rowsets(model, compare_model=none, arguments=none) %}
{%- set compare_model = compare_model if compare_model is not none else arguments['compare_model'] %}
with only_in_actual as (
    select * from {{ model }}
    except all
    select * from {{ compare_model }}
),

only_in_expected as (
    select * from {{ compare_model }}
    except all
    select * from {{ model }}
)

select 'only in actual' as side, * from only_in_actual
union all
select 'only in expected' as side, * from only_in_expected
{% endtest %}
