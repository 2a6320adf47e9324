//! Where users live and travel: a fixed table of real cities, and which are far apart (by the
//! engine's great-circle distance, the one the impossible-travel rules read).

use sentinel_event::distance_km;

/// One city of the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct City {
    /// City name (ASCII, so every consumer can print it).
    pub name: &'static str,
    /// ISO 3166-1 alpha-2 country code.
    pub country: &'static str,
    /// ISO 4217 code of the country's currency.
    pub currency: &'static str,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
}

const fn city(
    name: &'static str,
    country: &'static str,
    currency: &'static str,
    lat: f64,
    lon: f64,
) -> City {
    City {
        name,
        country,
        currency,
        lat,
        lon,
    }
}

/// Home and travel destinations: 34 cities in 24 countries on every inhabited continent, so
/// every city has destinations far enough away for impossible travel.
pub const CITIES: [City; 34] = [
    city("New York", "US", "USD", 40.7128, -74.0060),
    city("Los Angeles", "US", "USD", 34.0522, -118.2437),
    city("Chicago", "US", "USD", 41.8781, -87.6298),
    city("Toronto", "CA", "CAD", 43.6532, -79.3832),
    city("Mexico City", "MX", "MXN", 19.4326, -99.1332),
    city("Sao Paulo", "BR", "BRL", -23.5505, -46.6333),
    city("Buenos Aires", "AR", "ARS", -34.6037, -58.3816),
    city("London", "GB", "GBP", 51.5074, -0.1278),
    city("Manchester", "GB", "GBP", 53.4808, -2.2426),
    city("Paris", "FR", "EUR", 48.8566, 2.3522),
    city("Lyon", "FR", "EUR", 45.7640, 4.8357),
    city("Berlin", "DE", "EUR", 52.5200, 13.4050),
    city("Munich", "DE", "EUR", 48.1351, 11.5820),
    city("Madrid", "ES", "EUR", 40.4168, -3.7038),
    city("Barcelona", "ES", "EUR", 41.3851, 2.1734),
    city("Rome", "IT", "EUR", 41.9028, 12.4964),
    city("Milan", "IT", "EUR", 45.4642, 9.1900),
    city("Amsterdam", "NL", "EUR", 52.3676, 4.9041),
    city("Stockholm", "SE", "SEK", 59.3293, 18.0686),
    city("Warsaw", "PL", "PLN", 52.2297, 21.0122),
    city("Zurich", "CH", "CHF", 47.3769, 8.5417),
    city("Tokyo", "JP", "JPY", 35.6762, 139.6503),
    city("Osaka", "JP", "JPY", 34.6937, 135.5023),
    city("Seoul", "KR", "KRW", 37.5665, 126.9780),
    city("Shanghai", "CN", "CNY", 31.2304, 121.4737),
    city("Mumbai", "IN", "INR", 19.0760, 72.8777),
    city("Bangalore", "IN", "INR", 12.9716, 77.5946),
    city("Singapore", "SG", "SGD", 1.3521, 103.8198),
    city("Sydney", "AU", "AUD", -33.8688, 151.2093),
    city("Melbourne", "AU", "AUD", -37.8136, 144.9631),
    city("Johannesburg", "ZA", "ZAR", -26.2041, 28.0473),
    city("Dubai", "AE", "AED", 25.2048, 55.2708),
    city("Lagos", "NG", "NGN", 6.5244, 3.3792),
    city("Cairo", "EG", "EGP", 30.0444, 31.2357),
];

/// How far a destination must be from home to count as impossible travel within minutes.
pub const FAR_KM: f64 = 3_000.0;

/// For every city (by index into [`CITIES`]), the cities in another country at least
/// [`FAR_KM`] away. Computed once per simulator so picking a destination is one index.
pub fn far_cities() -> Vec<Vec<u8>> {
    CITIES
        .iter()
        .map(|home| {
            (0..CITIES.len())
                .filter(|&i| {
                    let c = &CITIES[i];
                    c.country != home.country
                        && distance_km(home.lat, home.lon, c.lat, c.lon) >= FAR_KM
                })
                .map(|i| i as u8)
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_valid_iso() {
        for c in &CITIES {
            assert!(sentinel_event::is_country(c.country), "{}", c.country);
            assert!(sentinel_event::is_currency(c.currency), "{}", c.currency);
            assert!((-90.0..=90.0).contains(&c.lat) && (-180.0..=180.0).contains(&c.lon));
        }
        let mut countries: Vec<_> = CITIES.iter().map(|c| c.country).collect();
        countries.sort_unstable();
        countries.dedup();
        assert!(countries.len() >= 20);
    }

    #[test]
    fn same_country_same_currency_and_every_city_has_far_destinations() {
        for a in &CITIES {
            for b in &CITIES {
                if a.country == b.country {
                    assert_eq!(a.currency, b.currency);
                }
            }
        }
        assert!(far_cities().iter().all(|far| far.len() >= 5));
    }
}
