package main

import (
	"fmt"
	"time"

	"github.com/profilecache/profilecache/profile"
)

// The baselines answer with the same JSON as profilecache's web package
// (web/json.go), so that every server encodes the same bytes per request.

type errorJSON struct {
	Error string `json:"error"`
}

type basicJSON struct {
	ID                  string `json:"id"`
	FirstName           string `json:"first_name"`
	LastName            string `json:"last_name"`
	Email               string `json:"email"`
	Phone               string `json:"phone"`
	AddressLine         string `json:"address_line"`
	PostalCode          string `json:"postal_code"`
	City                string `json:"city"`
	Country             string `json:"country"`
	MarketingPermission bool   `json:"marketing_permission"`
	Created             string `json:"created"`
}

type orderJSON struct {
	ID           string `json:"id"`
	Number       string `json:"number"`
	Date         string `json:"date"`
	Status       string `json:"status"`
	Total        string `json:"total"`
	Currency     string `json:"currency"`
	ItemCount    int    `json:"item_count"`
	ShippingCity string `json:"shipping_city"`
}

type pageJSON[T any] struct {
	Items  []T `json:"items"`
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
	Total  int `json:"total"`
}

func toBasicJSON(b profile.Basic) basicJSON {
	return basicJSON{
		ID:                  b.ID.String(),
		FirstName:           b.FirstName,
		LastName:            b.LastName,
		Email:               b.Email,
		Phone:               b.Phone,
		AddressLine:         b.AddressLine,
		PostalCode:          b.PostalCode,
		City:                b.City,
		Country:             b.Country,
		MarketingPermission: b.MarketingPermission,
		Created:             b.Created.Format(time.RFC3339),
	}
}

func toOrderJSON(o profile.Order) orderJSON {
	return orderJSON{
		ID:           o.ID,
		Number:       o.Number,
		Date:         o.Date.Format(time.RFC3339),
		Status:       o.Status,
		Total:        fmt.Sprintf("%d.%02d", o.Total/100, o.Total%100), // demo totals are positive
		Currency:     o.Currency,
		ItemCount:    o.ItemCount,
		ShippingCity: o.ShippingCity,
	}
}
