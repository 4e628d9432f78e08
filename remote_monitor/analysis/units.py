"""Digitizer and physics constants of the test stand (CAEN 14 bit, 2 Vpp, 500 MS/s, 50 ohm)."""

ADC_BITS = 14
ADC_RANGE_V = 2.0
MV_PER_ADC = ADC_RANGE_V / 2**ADC_BITS * 1000.0
NS_PER_SAMPLE = 2.0
OHM = 50.0
# charge of one sample at 1 mV: 1e-3 V * 2e-9 s / 50 ohm = 4e-14 C = 0.04 pC
PC_PER_MV_SAMPLE = 1e-3 * NS_PER_SAMPLE * 1e-9 / OHM * 1e12
ELEMENTARY_CHARGE_PC = 1.602176634e-19 * 1e12


def gain_to_pc(gain: float) -> float:
    """Mean SPE charge in pC for a PMT gain."""
    return gain * ELEMENTARY_CHARGE_PC


def pc_to_gain(charge_pc: float) -> float:
    """PMT gain for a mean SPE charge in pC."""
    return charge_pc / ELEMENTARY_CHARGE_PC
