-- Argo CD health check of a spikewatch.io/v1alpha1 VolatilityPipeline.
--
-- Install: in the argocd-cm ConfigMap, as
--   resource.customizations.health.spikewatch.io_VolatilityPipeline: |
--     <this file>
--
-- Reads the kstatus conditions the operator writes (Ready, Reconciling, Stalled, each with the
-- observedGeneration it describes) and RolledBack:
--   Progressing  no status yet, a generation the operator has not seen, or Reconciling=True
--   Degraded     Stalled=True (the spec cannot be realized), or the model was rolled back
--   Healthy      Ready=True
local health = { status = "Progressing", message = "Waiting for the spikewatch operator to report a status" }

if obj.status == nil or obj.status.observedGeneration == nil then
  return health
end
local generation = obj.metadata.generation
if generation ~= nil and obj.status.observedGeneration < generation then
  health.message = "Waiting for the operator to observe generation " .. generation
  return health
end

local conditions = {}
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    conditions[condition.type] = condition
  end
end

-- A condition counts only when it describes the current generation.
local function is_true(type)
  local condition = conditions[type]
  if condition == nil or condition.status ~= "True" then
    return false
  end
  return generation == nil or condition.observedGeneration == nil or condition.observedGeneration >= generation
end

local function describe(type)
  local condition = conditions[type]
  local reason = condition.reason or type
  if condition.message ~= nil and condition.message ~= "" then
    return reason .. ": " .. condition.message
  end
  return reason
end

if is_true("Stalled") then
  return { status = "Degraded", message = describe("Stalled") }
end
if is_true("Reconciling") then
  return { status = "Progressing", message = describe("Reconciling") }
end
if is_true("Ready") then
  if is_true("RolledBack") then
    return { status = "Degraded", message = "The ML model was rolled back to the baseline. " .. describe("RolledBack") }
  end
  return { status = "Healthy", message = describe("Ready") }
end
if conditions["Ready"] ~= nil then
  health.message = describe("Ready")
end
return health
